import type {
  DeadLetter,
  RunRecord,
} from '../store/coordination-store.interface';
import { oneLine } from './one-line';

const num = (n: number) => Math.round(n).toLocaleString('en');

/** Store time as ISO 8601 in UTC, to the second. */
const iso = (ms: number): string =>
  new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** One table cell: on one line, whatever the text held. */
const cell = oneLine;

/** Cut to `max` characters, the last one an ellipsis. */
const cut = (text: string, max: number): string =>
  text.length > max ? `${text.slice(0, max - 1)}…` : text;

/** A run's length for people: `850 ms`, `12.3 s`, `4 min 2 s`, `2 h 5 min`. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Rows of cells as columns, each as wide as its widest cell (the last one left as is). */
function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map((r) => r[i].length)),
  );
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

/** The `history` table: one line per ended run, newest first; a failed run's error on the line below it. */
export function renderHistory(
  job: string,
  records: RunRecord[],
  limit: number,
): string {
  if (!records.length)
    return `No ended runs recorded for job "${job}" (a run is recorded when it ends: none has ended since history was kept, or the app's historyLimit is 0).`;
  const header = [
    'RUN',
    'STATUS',
    'STARTED (UTC)',
    'DURATION',
    'IDS',
    'RANGES done/retried/dead',
    'STARTED BY',
    'HOST',
    'PARAMS',
  ];
  const rows = records.map((r) => [
    cell(r.runId),
    r.status,
    r.startedAt === null ? '-' : iso(r.startedAt),
    r.startedAt === null ? '-' : fmtDuration(r.endedAt - r.startedAt),
    num(r.summary.ids),
    `${num(r.summary.ranges.completed)}/${num(r.summary.ranges.retried)}/${num(r.summary.ranges.dead)}`,
    cell(r.startedBy ?? '-'),
    cell(r.host ?? '-'),
    r.params === null ? '-' : cut(cell(JSON.stringify(r.params)), 60),
  ]);
  const [head, ...lines] = table([header, ...rows]);
  const out = [
    `job ${job}: ${records.length === limit ? `the newest ${limit} ended runs (--limit for more)` : `${records.length} ended run${records.length === 1 ? '' : 's'}`}, newest first`,
    head,
  ];
  lines.forEach((line, i) => {
    out.push(line);
    const { summary, lastHold } = records[i];
    if (summary.heldMs > 0)
      out.push(
        `    held ${fmtDuration(summary.heldMs)}${lastHold ? `; last hold: ${cell(lastHold.reason)} (${cell(lastHold.indicator)})` : ''}`,
      );
    const error = records[i].error;
    if (error !== undefined)
      out.push(
        ...error
          .split('\n')
          .map((l, j) => `    ${j === 0 ? 'error: ' : '       '}${cell(l)}`),
      );
  });
  return out.join('\n');
}

/** Up to `n` ids as a list, an ellipsis when there are more. */
const firstIds = (ids: unknown[], n = 5): string =>
  cell(
    ids
      .slice(0, n)
      .map((id) => JSON.stringify(id))
      .join(', ') + (ids.length > n ? ', …' : ''),
  );

/** The `dead` table: how many the job holds, which of them are shown, then one line per dead letter. */
export function renderDead(
  job: string,
  total: number,
  offset: number,
  deadLetters: DeadLetter[],
): string {
  if (!total) return `No dead letters for job "${job}".`;
  const noun = `dead letter${total === 1 ? '' : 's'}`;
  if (!deadLetters.length)
    return `job ${job}: ${num(total)} ${noun}; none from --offset ${offset} (they are numbered from 0).`;
  const last = offset + deadLetters.length;
  const rows = table([
    ['RUN', 'ATTEMPTS', 'IDS', 'FIRST IDS', 'AT (UTC)', 'ERROR'],
    ...deadLetters.map((d) => [
      cell(d.runId),
      String(d.attempts),
      num(d.range.ids.length),
      firstIds(d.range.ids),
      iso(d.at),
      cell(d.error.message.split('\n')[0]),
    ]),
  ]);
  return [
    `job ${job}: ${num(total)} ${noun} (oldest first), showing ${offset + 1}–${last}${last < total ? `; --offset ${last} for the next` : ''}`,
    ...rows,
    'retry-dead hands them all out again; retry-dead --run <RUN> --first <first id> only that one.',
  ].join('\n');
}
