import { duration, esc, num } from './dashboard.html';
import { type RateSample, ratesOf } from './rate-history';

const WIDTH = 600;
const HEIGHT = 100;

/**
 * The rate over the current run as an inline SVG line (no chart library):
 * ids per second, 0 at the bottom and the run's peak at the top, with the
 * figures a screen reader reads instead.
 */
export function renderRateChart(
  job: string,
  samples: RateSample[],
  active: boolean,
): string {
  const rates = ratesOf(samples);
  if (rates.length < 2)
    return `<p class="muted chart-note">${active ? 'Rate chart: drawn once this dashboard has watched the run for a few seconds.' : 'No rate chart: this dashboard did not watch that run.'}</p>`;
  const start = samples[0].at;
  const span = Math.max(1, rates[rates.length - 1].at - start);
  const peak = Math.max(1, ...rates.map((r) => r.rate));
  const points = [{ at: start, rate: rates[0].rate }, ...rates].map(
    (r) =>
      `${(((r.at - start) / span) * WIDTH).toFixed(1)},${(HEIGHT - (r.rate / peak) * (HEIGHT - 4)).toFixed(1)}`,
  );
  const now = rates[rates.length - 1].rate;
  const label = `Rate of ${job} over ${duration(span)}: now ${num(Math.round(now))} ids/s, peak ${num(Math.round(peak))} ids/s.`;
  return `<figure class="chart"><svg viewBox="0 0 ${WIDTH} ${HEIGHT}" preserveAspectRatio="none" role="img" aria-label="${esc(label)}" data-chart="rate"><polygon class="area" points="0,${HEIGHT} ${points.join(' ')} ${WIDTH},${HEIGHT}"/><polyline class="line" points="${points.join(' ')}"/></svg><figcaption class="muted">Ids/s over the last ${esc(duration(span))}: now <strong>${num(Math.round(now))}</strong>, peak ${num(Math.round(peak))}.</figcaption></figure>`;
}
