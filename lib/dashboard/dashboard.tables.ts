import {
  badge,
  duration,
  esc,
  jobId,
  json,
  num,
  runId,
  stackDetails,
  time,
} from './dashboard.html';
import type { JobView, PageOptions } from './dashboard.view-model';

/** The job's recent runs (its history); a failed run's error with its stack, collapsed. */
export function renderRuns(v: JobView): string {
  if (!v.runs.length)
    return '<h3>Recent runs</h3><p class="muted">No ended runs recorded yet.</p>';
  const rows = v.runs
    .map(
      (r) =>
        `<tr><td>${runId(r.runId)}</td><td>${badge(r.status, r.summary.ranges.dead)}</td><td>${time(r.startedAt)}</td><td>${r.startedAt === null ? '–' : duration(r.endedAt - r.startedAt)}</td><td>${num(r.summary.ids)}</td><td>${num(r.summary.ranges.completed)} / ${num(r.summary.ranges.retried)} / ${num(r.summary.ranges.dead)}</td><td>${esc(r.startedBy ?? '–')}</td><td><code>${r.params === null ? '–' : esc(json(r.params, 60))}</code></td></tr>${r.error ? `<tr class="run-error"><td></td><td colspan="7">${esc(r.error)}${stackDetails(r.stack)}</td></tr>` : ''}`,
    )
    .join('');
  return `<h3>Recent runs</h3><div class="scroll"><table><thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Took</th><th scope="col">Ids</th><th scope="col">Ranges done / retried / dead</th><th scope="col">Started by</th><th scope="col">Params</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/**
 * One page of the job's dead letters, with links to the pages around it;
 * each with its stack (collapsed) and, with the controls, a button that
 * retries that one only (named by its run and first id, which stay the same
 * while the list changes).
 */
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
  const retry = (letter: { runId: string; firstId: unknown }) =>
    o.controls
      ? `<td><form method="post" action="${esc(o.base)}/${encodeURIComponent(job)}/retry-dead"><button type="submit" data-action="retry-letter" data-letter="${esc(JSON.stringify(letter))}">Retry</button></form></td>`
      : '';
  const rows = letters
    .map((d) => {
      const ids = d.range.ids;
      const shown = ids
        .slice(0, 5)
        .map((id) => json(id))
        .join(', ');
      return `<tr><td>${esc(shown)}${ids.length > 5 ? `, … (${num(ids.length)} ids)` : ''}</td><td>${d.attempts}</td><td>${time(d.at)}</td><td>${runId(d.runId)}</td><td class="msg">${esc(d.error.message.split('\n')[0])}${stackDetails(d.error.stack)}</td>${retry({ runId: d.runId, firstId: ids[0] })}</tr>`;
    })
    .join('');
  return `<h3>Dead letters</h3><p>${num(total)} in all; showing ${num(offset + 1)}–${num(offset + letters.length)}, oldest first. ${nav}</p><div class="scroll"><table><thead><tr><th scope="col">Ids</th><th scope="col">Attempts</th><th scope="col">When</th><th scope="col">Run</th><th scope="col">Last error</th>${o.controls ? '<th scope="col"><span class="visually-hidden">Retry</span></th>' : ''}</tr></thead><tbody>${rows}</tbody></table></div>`;
}
