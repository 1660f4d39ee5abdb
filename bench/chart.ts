/** A horizontal bar chart as SVG, grouped by workload: enough for the README, no dependency. */
export function chart(
  bars: { group: string; label: string; value: number }[],
): string {
  const groups = [...new Set(bars.map((b) => b.group))];
  const max = Math.max(...bars.map((b) => b.value));
  const width = 760;
  const left = 230;
  const barH = 18;
  let y = 30;
  const parts: string[] = [
    `<text x="10" y="18" font-size="14" font-weight="bold">Ranges per second (higher is better), medians</text>`,
  ];
  for (const group of groups) {
    parts.push(
      `<text x="10" y="${y + 12}" font-size="12" font-weight="bold">${esc(group)}</text>`,
    );
    y += 18;
    for (const b of bars.filter((x) => x.group === group)) {
      const w = Math.max(1, ((width - left - 90) * b.value) / max);
      const colour = b.label.startsWith('this library') ? '#e0234e' : '#8a8f98';
      parts.push(
        `<text x="${left - 6}" y="${y + 13}" font-size="11" text-anchor="end">${esc(b.label)}</text>`,
      );
      parts.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colour}"/>`,
      );
      parts.push(
        `<text x="${left + w + 4}" y="${y + 13}" font-size="11">${Math.round(b.value).toLocaleString('en')}</text>`,
      );
      y += barH + 4;
    }
    y += 10;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
