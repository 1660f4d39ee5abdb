import { redactSecrets } from '../redact-secrets';
import { stateLabel } from '../run/job-state';

/** Text as HTML: every character that could open markup escaped. */
export const esc = (value: unknown): string =>
  String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

export const num = (n: number): string => n.toLocaleString('en-US');

/** `2026-12-03 18:54:27 UTC`: the store's time, the same for every reader. */
export const time = (ms: number | null | undefined): string =>
  ms === null || ms === undefined
    ? '–'
    : `<time datetime="${new Date(ms).toISOString()}">${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC</time>`;

/** A run id, short, with the whole id on hover. */
export const runId = (id: string): string =>
  `<code title="${esc(id)}">${esc(id.slice(0, 8))}</code>`;

export const duration = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};

export const json = (value: unknown, max = 80): string => {
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
export const badge = (state: string, dead = 0): string => {
  const label = stateLabel(state, dead);
  const kind = label === state ? (STATES[state] ?? 'idle') : 'dead';
  return `<span class="badge badge-${esc(kind)}">${esc(label)}</span>`;
};

/** A stored stack, collapsed, its secrets masked; nothing for none. */
export const stackDetails = (stack: string | undefined): string =>
  stack
    ? `<details class="stack"><summary>Stack trace</summary><pre>${esc(redactSecrets(stack))}</pre></details>`
    : '';
