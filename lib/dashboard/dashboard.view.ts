import type { JobStatus } from '../interfaces/run-summary.interface';
import { stateLabel } from '../run/job-state';
import type {
  DeadLetter,
  RunRecord,
} from '../store/coordination-store.interface';

/** Everything the page shows about one job, read from the store (all hosts). */
export interface JobView {
  status: JobStatus;
  hosts: Record<string, number>;
  runs: RunRecord[];
  dead: { offset: number; limit: number; letters: DeadLetter[] };
}

export interface PageOptions {
  /** Where the dashboard is mounted, `/jobs` (no trailing slash; `''` at the root). */
  base: string;
  title: string;
  controls: boolean;
  pollMs: number;
}

const esc = (value: unknown): string =>
  String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

const num = (n: number): string => n.toLocaleString('en-US');

/** `2026-12-03 18:54:27 UTC`: the store's time, the same for every reader. */
const time = (ms: number | null | undefined): string =>
  ms === null || ms === undefined
    ? '–'
    : `<time datetime="${new Date(ms).toISOString()}">${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC</time>`;

/** A run id, short, with the whole id on hover. */
const runId = (id: string): string =>
  `<code title="${esc(id)}">${esc(id.slice(0, 8))}</code>`;

const duration = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};

const json = (value: unknown, max = 80): string => {
  const text = JSON.stringify(value) ?? '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

/** A job name as an HTML id: letters, digits, `-`, `_` (job names may hold `.` and `:`). */
export const jobId = (job: string): string =>
  `job-${job.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;

const STATES: Record<string, string> = {
  running: 'running',
  paused: 'paused',
  stopping: 'stopping',
  completed: 'done',
  stopped: 'stopped',
  failed: 'failed',
  idle: 'idle',
  cancelled: 'stopped',
};

/** A state's badge; a completed run that left `dead` dead letters gets its own, never the green of done. */
const badge = (state: string, dead = 0): string => {
  const label = stateLabel(state, dead);
  const kind = label === state ? (STATES[state] ?? 'idle') : 'dead';
  return `<span class="badge badge-${esc(kind)}">${esc(label)}</span>`;
};

/** The live figures of a job: state, progress, rate, ETA, ranges, cursor, partitions, hosts. */
export function renderStats(v: JobView): string {
  const s = v.status;
  const percent = s.percent;
  const bar =
    percent === undefined
      ? `<p class="muted">No total known (add a <code>@RangeTotal</code> for percent and ETA).</p>`
      : `<div class="bar" role="progressbar" aria-label="Progress of ${esc(s.job)}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${percent.toFixed(1)}"><div class="fill" style="width:${percent.toFixed(1)}%"></div></div>`;
  const figures: [string, string][] = [
    ['State', badge(s.state, s.ranges.dead)],
    ['Progress', percent === undefined ? '–' : `${percent.toFixed(1)}%`],
    [
      'Ids done',
      `${num(s.ids.done)}${s.total === undefined ? '' : ` of ${num(s.total)}`}`,
    ],
    ['Rate', `${num(s.rate)} ids/s`],
    ['ETA', s.etaMs === undefined ? '–' : duration(s.etaMs)],
    ['Ranges done', num(s.ranges.done)],
    ['Leased', num(s.ranges.leased)],
    ['Retrying', num(s.ranges.retrying)],
    ['Dead', num(s.ranges.dead)],
    ['Cursor', s.cursor === null ? 'start' : esc(json(s.cursor))],
    ['Run', s.runId ? runId(s.runId) : '–'],
    ['Started', time(s.startedAt)],
  ];
  const hosts = Object.entries(v.hosts);
  const parts = s.partitions ?? [];
  return [
    bar,
    `<dl class="figures">${figures.map(([k, val]) => `<div><dt>${k}</dt><dd data-figure="${esc(k)}">${val}</dd></div>`).join('')}</dl>`,
    s.error ? `<p class="error" role="alert">${esc(s.error)}</p>` : '',
    parts.length
      ? `<table><caption>Partitions</caption><thead><tr><th scope="col">#</th><th scope="col">Bounds</th><th scope="col">Cursor</th><th scope="col">Ids this run</th><th scope="col">Key space</th></tr></thead><tbody>${parts
          .map(
            (p) =>
              `<tr><td>${p.index + 1}</td><td>(${esc(json(p.after))}, ${esc(json(p.upTo))}]</td><td>${esc(json(p.cursor))}</td><td>${num(p.ids)}</td><td>${p.exhausted ? 'done' : p.percent === undefined ? '–' : `${p.percent.toFixed(1)}%`}</td></tr>`,
          )
          .join('')}</tbody></table>`
      : '',
    `<table><caption>Leases per host</caption><thead><tr><th scope="col">Host</th><th scope="col">Leases</th><th scope="col">Share</th></tr></thead><tbody>${
      hosts.length
        ? hosts
            .map(([host, n]) => {
              const all = hosts.reduce((a, [, c]) => a + c, 0);
              return `<tr><td><code>${esc(host)}</code></td><td>${num(n)}</td><td>${((n / all) * 100).toFixed(0)}%</td></tr>`;
            })
            .join('')
        : '<tr><td colspan="3" class="muted">No host holds a lease now.</td></tr>'
    }</tbody></table>`,
  ].join('');
}

/** The job's recent runs (its history). */
export function renderRuns(v: JobView): string {
  if (!v.runs.length)
    return '<h3>Recent runs</h3><p class="muted">No ended runs recorded yet.</p>';
  const rows = v.runs
    .map(
      (r) =>
        `<tr><td>${runId(r.runId)}</td><td>${badge(r.status, r.summary.ranges.dead)}</td><td>${time(r.startedAt)}</td><td>${r.startedAt === null ? '–' : duration(r.endedAt - r.startedAt)}</td><td>${num(r.summary.ids)}</td><td>${num(r.summary.ranges.completed)} / ${num(r.summary.ranges.retried)} / ${num(r.summary.ranges.dead)}</td><td>${esc(r.startedBy ?? '–')}</td><td><code>${r.params === null ? '–' : esc(json(r.params, 60))}</code></td></tr>${r.error ? `<tr class="run-error"><td></td><td colspan="7">${esc(r.error)}</td></tr>` : ''}`,
    )
    .join('');
  return `<h3>Recent runs</h3><div class="scroll"><table><thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Took</th><th scope="col">Ids</th><th scope="col">Ranges done / retried / dead</th><th scope="col">Started by</th><th scope="col">Params</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** One page of the job's dead letters, with links to the pages around it. */
export function renderDead(v: JobView, o: PageOptions): string {
  const { offset, limit, letters } = v.dead;
  const total = v.status.ranges.dead;
  const job = v.status.job;
  if (!total)
    return '<h3>Dead letters</h3><p class="muted">No dead letters.</p>';
  const page = (to: number, label: string, rel: string) =>
    `<a href="${esc(o.base)}?job=${encodeURIComponent(job)}&amp;dead=${to}#${jobId(job)}" rel="${rel}">${label}</a>`;
  const nav = [
    offset > 0 ? page(Math.max(0, offset - limit), '← Newer page', 'prev') : '',
    offset + limit < total ? page(offset + limit, 'Next page →', 'next') : '',
  ]
    .filter(Boolean)
    .join(' ');
  const rows = letters
    .map((d) => {
      const ids = d.range.ids;
      const shown = ids
        .slice(0, 5)
        .map((id) => json(id))
        .join(', ');
      return `<tr><td>${esc(shown)}${ids.length > 5 ? `, … (${num(ids.length)} ids)` : ''}</td><td>${d.attempts}</td><td>${time(d.at)}</td><td>${runId(d.runId)}</td><td class="msg">${esc(d.error.message.split('\n')[0])}</td></tr>`;
    })
    .join('');
  return `<h3>Dead letters</h3><p>${num(total)} in all; showing ${num(offset + 1)}–${num(offset + letters.length)}, oldest first. ${nav}</p><div class="scroll"><table><thead><tr><th scope="col">Ids</th><th scope="col">Attempts</th><th scope="col">When</th><th scope="col">Run</th><th scope="col">Last error</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

const CONTROLS: { action: string; label: string; confirm?: string }[] = [
  { action: 'pause', label: 'Pause' },
  { action: 'resume', label: 'Resume' },
  {
    action: 'cancel',
    label: 'Cancel run',
    confirm: 'Cancel the run on every host? The cursor stays.',
  },
  { action: 'retry-dead', label: 'Retry dead letters' },
  {
    action: 'reset',
    label: 'Reset cursor',
    confirm: 'Reset the cursor? The next run handles every row again.',
  },
];

function renderJob(v: JobView, o: PageOptions): string {
  const job = v.status.job;
  const id = jobId(job);
  const controls = o.controls
    ? `<div class="controls" role="group" aria-label="Controls of ${esc(job)}">${CONTROLS.map(
        (c) =>
          `<form method="post" action="${esc(o.base)}/${encodeURIComponent(job)}/${c.action}"><button type="submit" data-action="${c.action}"${c.confirm ? ` data-confirm="${esc(`Job "${job}": ${c.confirm}`)}"` : ''}>${c.label}</button></form>`,
      ).join('')}<p class="outcome" role="status" aria-live="polite"></p></div>`
    : '';
  return `<section class="job" id="${id}" data-job="${esc(job)}" aria-labelledby="${id}-title"><h2 id="${id}-title">${esc(job)}</h2>${controls}<div data-live="stats">${renderStats(v)}</div><div data-live="runs">${renderRuns(v)}</div><div data-live="dead">${renderDead(v, o)}</div></section>`;
}

/** The whole page: every job of the app, server-rendered; the script keeps it live. */
export function renderPage(views: JobView[], o: PageOptions): string {
  const jobs = views.length
    ? views.map((v) => renderJob(v, o)).join('')
    : '<p>This app declares no jobs.</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(o.title)}</title>
<link rel="stylesheet" href="${esc(o.base)}/dashboard.css">
<script src="${esc(o.base)}/dashboard.js" defer></script>
</head>
<body data-base="${esc(o.base)}" data-poll-ms="${o.pollMs}">
<header><h1>${esc(o.title)}</h1><p class="muted">Read from the coordination store: every host's runs. <span data-live-note>Updates every ${(o.pollMs / 1000).toFixed(0)} s.</span>${o.controls ? '' : ' Read-only.'}</p></header>
<main>${jobs}</main>
</body>
</html>
`;
}
