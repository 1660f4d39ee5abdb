import { jobState, stateLabel } from '../run/job-state';
import type { StoreRunState } from '../store/coordination-store.interface';
import { oneLine } from './one-line';

const WIDTH = 30;

const fmtMs = (ms: number): string => {
  const s = Math.round(ms / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
      : `${s}s`;
};

const num = (n: number) => Math.round(n).toLocaleString('en');

/** The CLI's picture of a job: state, progress bar (with a total), rate, ETA, ranges and leases per host. */
export function renderStatus(
  job: string,
  s: StoreRunState,
  rate: number,
  owners: Record<string, number>,
): string {
  const state = jobState(s);
  const ids = s.counters.ids;
  if (state === 'idle')
    return `job ${job}: idle; its next run starts ${s.cursor === null ? 'from the first row' : `after ${JSON.stringify(s.cursor)}`}`;
  const lines = [
    `job ${job}: ${stateLabel(state, s.dead)}${s.runId ? ` (run ${s.runId})` : ''}${s.error ? `: ${oneLine(s.error)}` : ''}`,
  ];
  if (s.total !== undefined && s.total > 0) {
    const ratio = Math.min(1, ids / s.total);
    const filled = Math.round(ratio * WIDTH);
    const eta =
      rate > 0 && state === 'running'
        ? ` | ETA ${fmtMs(((s.total - ids) / rate) * 1000)}`
        : '';
    lines.push(
      `${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)} ${(ratio * 100).toFixed(1)}% | ${num(ids)}/${num(s.total)} ids | ${num(rate)} ids/s${eta}`,
    );
  } else {
    lines.push(`${num(ids)} ids done | ${num(rate)} ids/s`);
  }
  lines.push(
    `ranges: ${num(s.counters.completed)} done, ${s.leased} leased, ${s.retrying} retrying, ${s.dead} dead${s.partitions ? '' : ` | cursor ${JSON.stringify(s.cursor)}`}`,
  );
  if (s.partitions) lines.push(...partitionLines(s));
  if (s.hold && state === 'running')
    lines.push(
      `on hold: ${oneLine(s.hold.reason)} (${s.hold.indicator}), for ${fmtMs(s.hold.until - s.now)} more${s.heldMs ? `; held ${fmtMs(s.heldMs)} in all` : ''}`,
    );
  else if (s.heldMs) lines.push(`held ${fmtMs(s.heldMs)} in all`);
  const hosts = Object.entries(owners);
  lines.push(
    hosts.length
      ? `leases per host: ${hosts.map(([h, n]) => `${h} ${n}`).join(', ')}`
      : 'leases per host: none',
  );
  if (s.startedAt)
    lines.push(
      `started ${new Date(s.startedAt).toISOString()}${s.endedAt ? `, ended ${new Date(s.endedAt).toISOString()}` : ''}`,
    );
  return lines.join('\n');
}

/** One line per partition: bounds, cursor, ids handed out this run, and who loads it (or that it is done). */
function partitionLines(s: StoreRunState): string[] {
  const parts = s.partitions ?? [];
  return [
    `partitions: ${parts.length} (${parts.filter((p) => p.exhausted).length} loaded to the end)`,
    ...parts.map(
      (p, i) =>
        `  ${String(i + 1).padStart(String(parts.length).length)}. (${JSON.stringify(p.after)}, ${JSON.stringify(p.upTo)}] cursor ${JSON.stringify(p.cursor)}, ${num(p.ids)} ids handed out${p.exhausted ? ', done' : p.loader && p.loader.until > s.now ? `, loading on ${hostLabel(p.loader.owner)}` : ''}`,
    ),
  ];
}

/** `hostname:pid` of a host id (`hostname:pid:random`). */
const hostLabel = (owner: string): string =>
  owner.split(':').slice(0, 2).join(':');

/** The same for scripts: every figure, hosts by their full id. */
export function statusJson(
  job: string,
  s: StoreRunState,
  rate: number,
  owners: Record<string, number>,
) {
  const state = jobState(s);
  return {
    job,
    state,
    runId: s.runId,
    cursor: s.cursor,
    ...(s.partitions && {
      partitions: s.partitions.map((p, index) => ({
        index,
        after: p.after,
        upTo: p.upTo,
        cursor: p.cursor,
        ids: p.ids,
        exhausted: p.exhausted,
        loader: p.loader?.owner ?? null,
      })),
    }),
    error: s.error ?? null,
    ids: { done: s.counters.ids, total: s.total ?? null },
    ranges: {
      done: s.counters.completed,
      leased: s.leased,
      retrying: s.retrying,
      dead: s.dead,
      retried: s.counters.retried,
    },
    rate: Math.round(rate),
    hold:
      s.hold && state === 'running'
        ? {
            reason: s.hold.reason,
            indicator: s.hold.indicator,
            since: new Date(s.hold.since).toISOString(),
            until: new Date(s.hold.until).toISOString(),
          }
        : null,
    heldMs: s.heldMs ?? 0,
    leasesByHost: owners,
    startedAt:
      s.startedAt === null ? null : new Date(s.startedAt).toISOString(),
    endedAt: s.endedAt === null ? null : new Date(s.endedAt).toISOString(),
  };
}
