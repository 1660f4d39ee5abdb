import { esc, jobId } from './dashboard.html';
import { renderStats } from './dashboard.stats';
import { renderDead, renderRuns } from './dashboard.tables';
import {
  type Action,
  actionsFor,
  byUrgency,
  type JobView,
  type PageOptions,
} from './dashboard.view-model';

export { renderDead, renderRuns, renderStats };

const BUTTONS: { action: Action; label: string; confirm?: string }[] = [
  { action: 'pause', label: 'Pause' },
  { action: 'resume', label: 'Resume' },
  {
    action: 'cancel',
    label: 'Cancel run',
    confirm: 'Cancel the run on every host? The cursor stays.',
  },
  { action: 'retry-dead', label: 'Retry all dead letters' },
  {
    action: 'reset',
    label: 'Reset cursor',
    confirm: 'Reset the cursor? The next run handles every row again.',
  },
];

/** The buttons that fit the job's state now (the script swaps them as the state changes). */
export function renderButtons(v: JobView, o: PageOptions): string {
  const job = v.status.job;
  const fits = actionsFor(v.status);
  return BUTTONS.filter((c) => fits.includes(c.action))
    .map(
      (c) =>
        `<form method="post" action="${esc(o.base)}/${encodeURIComponent(job)}/${c.action}"><button type="submit" data-action="${c.action}"${c.confirm ? ` data-confirm="${esc(`Job "${job}": ${c.confirm}`)}"` : ''}>${c.label}</button></form>`,
    )
    .join('');
}

/** The form that starts a run with params; hidden while a run is active. */
function startForm(v: JobView, o: PageOptions): string {
  const job = v.status.job;
  const id = `${jobId(job)}-params`;
  const hidden = actionsFor(v.status).includes('start') ? '' : ' hidden';
  return `<form class="start" method="post" action="${esc(o.base)}/${encodeURIComponent(job)}/start" data-start${hidden}><label for="${id}">Params (JSON object; empty for none)${v.traits.params ? ', checked by the job' : ''}</label><textarea id="${id}" name="params" rows="2" spellcheck="false" placeholder="{}"></textarea><button type="submit" data-action="start">Start run</button></form>`;
}

function renderJob(v: JobView, o: PageOptions): string {
  const job = v.status.job;
  const id = jobId(job);
  const controls = o.controls
    ? `<div class="controls" role="group" aria-label="Controls of ${esc(job)}"><div class="buttons" data-live="buttons">${renderButtons(v, o)}</div>${startForm(v, o)}<p class="outcome" role="status" aria-live="polite"></p></div>`
    : '';
  return `<section class="job" id="${id}" data-job="${esc(job)}" aria-labelledby="${id}-title"><h2 id="${id}-title">${esc(job)}</h2>${controls}<div data-live="stats">${renderStats(v)}</div><div data-live="runs">${renderRuns(v)}</div><div data-live="dead">${renderDead(v, o)}</div></section>`;
}

/** The whole page: every job of the app, the running ones first, server-rendered; the script keeps it live. */
export function renderPage(views: JobView[], o: PageOptions): string {
  const jobs = views.length
    ? byUrgency(views)
        .map((v) => renderJob(v, o))
        .join('')
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
