import type {
  JobStatus,
  PartitionStatus,
} from '../interfaces/run-summary.interface';
import { renderRateChart } from './dashboard.chart';
import {
  badge,
  duration,
  esc,
  json,
  num,
  runId,
  stackDetails,
  time,
} from './dashboard.html';
import type { JobView } from './dashboard.view-model';

const ACTIVE = ['running', 'paused', 'stopping'];

/** The progress bar, or why there is none. */
function progress(v: JobView): string {
  const s = v.status;
  if (s.percent !== undefined)
    return `<div class="bar" role="progressbar" aria-label="Progress of ${esc(s.job)}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${s.percent.toFixed(1)}"><div class="fill" style="width:${s.percent.toFixed(1)}%"></div></div>`;
  if (!v.traits.total)
    return `<p class="muted">No total known (add a <code>@RangeTotal</code> for percent and ETA).</p>`;
  return `<p class="muted">${ACTIVE.includes(s.state) ? 'Counting the total (<code>@RangeTotal</code>)…' : 'The total is counted when a run starts (<code>@RangeTotal</code>).'}</p>`;
}

/**
 * Rate and ETA while the run is active; for an ended run its duration and
 * average rate (a rate over the last minute would only decay once it ended).
 */
function pace(v: JobView): [string, string][] {
  const s = v.status;
  if (ACTIVE.includes(s.state))
    return [
      ['Rate', `${num(s.rate)} ids/s`],
      ['ETA', s.etaMs === undefined ? '–' : duration(s.etaMs)],
    ];
  const run = v.lastRun;
  if (!run || s.state === 'idle')
    return [
      ['Took', '–'],
      ['Average rate', '–'],
    ];
  const took =
    run.startedAt !== null
      ? run.endedAt - run.startedAt
      : run.summary.durationMs;
  return [
    ['Took', duration(took)],
    [
      'Average rate',
      took > 0
        ? `${num(Math.round((run.summary.ids / took) * 1000))} ids/s`
        : '–',
    ],
  ];
}

const partitionBar = (job: string, p: PartitionStatus): string => {
  const label = `Partition ${p.index + 1} of ${job}`;
  if (p.percent === undefined)
    return `<div class="bar small" role="progressbar" aria-label="${esc(label)}" aria-valuetext="key space unknown"><div class="fill unknown"></div></div>`;
  return `<div class="bar small" role="progressbar" aria-label="${esc(label)}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${p.percent.toFixed(1)}"><div class="fill${p.exhausted ? ' done' : ''}" style="width:${p.percent.toFixed(1)}%"></div></div>`;
};

function partitions(s: JobStatus): string {
  const parts = s.partitions ?? [];
  if (!parts.length) return '';
  const rows = parts
    .map(
      (p) =>
        `<tr data-partition="${p.index}"><td>${p.index + 1}</td><td class="part-bar">${partitionBar(s.job, p)}</td><td>${p.exhausted ? 'done' : p.percent === undefined ? '–' : `${p.percent.toFixed(1)}%`}</td><td>(${esc(json(p.after))}, ${esc(json(p.upTo))}]</td><td>${esc(json(p.cursor))}</td><td>${num(p.ids)}</td></tr>`,
    )
    .join('');
  return `<div class="scroll"><table class="partitions"><caption>Partitions</caption><thead><tr><th scope="col">#</th><th scope="col">Key space</th><th scope="col"></th><th scope="col">Bounds</th><th scope="col">Cursor</th><th scope="col">Ids this run</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function hosts(v: JobView): string {
  const list = Object.entries(v.hosts);
  const all = list.reduce((a, [, c]) => a + c, 0);
  return `<table><caption>Leases per host</caption><thead><tr><th scope="col">Host</th><th scope="col">Leases</th><th scope="col">Share</th></tr></thead><tbody>${
    list.length
      ? list
          .map(
            ([host, n]) =>
              `<tr><td><code>${esc(host)}</code></td><td>${num(n)}</td><td>${((n / all) * 100).toFixed(0)}%</td></tr>`,
          )
          .join('')
      : '<tr><td colspan="3" class="muted">No host holds a lease now.</td></tr>'
  }</tbody></table>`;
}

/** The live figures of a job: state, progress, pace, ranges, cursor, rate chart, partitions, hosts. */
export function renderStats(v: JobView): string {
  const s = v.status;
  const figures: [string, string][] = [
    ['State', badge(s.state, s.ranges.dead)],
    ['Progress', s.percent === undefined ? '–' : `${s.percent.toFixed(1)}%`],
    [
      'Ids done',
      `${num(s.ids.done)}${s.total === undefined ? '' : ` of ${num(s.total)}`}`,
    ],
    ...pace(v),
    ['Ranges done', num(s.ranges.done)],
    ['Leased', num(s.ranges.leased)],
    ['Retrying', num(s.ranges.retrying)],
    ['Dead', num(s.ranges.dead)],
    ['Cursor', s.cursor === null ? 'start' : esc(json(s.cursor))],
    ['Run', s.runId ? runId(s.runId) : '–'],
    ['Started', time(s.startedAt)],
    ...(s.heldMs ? ([['Held', duration(s.heldMs)]] as [string, string][]) : []),
  ];
  const failedStack =
    s.state === 'failed' && v.lastRun ? stackDetails(v.lastRun.stack) : '';
  return [
    progress(v),
    `<dl class="figures">${figures.map(([k, val]) => `<div><dt>${k}</dt><dd data-figure="${esc(k)}">${val}</dd></div>`).join('')}</dl>`,
    s.hold
      ? `<div class="hold" role="status" data-hold="${esc(s.hold.indicator)}"><p><strong>On hold</strong> until ${time(s.hold.until)} (${esc(s.hold.indicator)}): ${esc(s.hold.reason)}. No host hands out a new range; ranges in flight finish.</p></div>`
      : '',
    s.error
      ? `<div class="error" role="alert"><p>${esc(s.error)}</p>${failedStack}</div>`
      : '',
    s.runId ? renderRateChart(s.job, v.samples, ACTIVE.includes(s.state)) : '',
    partitions(s),
    hosts(v),
  ].join('');
}
