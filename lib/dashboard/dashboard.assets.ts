/** The page's stylesheet: readable on a phone, contrast above WCAG AA, no external fonts. */
export const DASHBOARD_CSS: string = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #4d5560; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --accent: #0b5cad; --ok: #1a7f37; --warn: #8a5a00; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header, main { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
header h1 { font-size: 1.4rem; margin: 1rem 0 0.25rem; }
.muted { color: var(--muted); }
.job { border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 1rem 1rem; margin: 1rem 0; background: var(--bg); }
.job h2 { margin: 0 0 0.5rem; font-size: 1.2rem; }
.job h3 { font-size: 1rem; margin: 1rem 0 0.25rem; }
.bar { height: 1.1rem; background: var(--panel); border: 1px solid var(--line); border-radius: 4px; overflow: hidden; }
.fill { height: 100%; background: var(--accent); transition: width 0.4s; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr)); gap: 0.25rem 1rem; margin: 0.75rem 0; }
.figures div { background: var(--panel); border-radius: 4px; padding: 0.25rem 0.5rem; }
.figures dt { font-size: 0.8rem; color: var(--muted); }
.figures dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: 0.3rem 0.5rem 0.3rem 0; vertical-align: top; }
td.msg, .run-error td { color: var(--bad); overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
code { font: 0.85rem ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { display: inline-block; padding: 0 0.5rem; border-radius: 999px; font-size: 0.85rem; font-weight: 600; color: #fff; background: var(--muted); }
.badge-running { background: var(--accent); } .badge-done { background: var(--ok); }
.badge-paused, .badge-stopping, .badge-stopped, .badge-dead { background: var(--warn); } .badge-failed { background: var(--bad); }
.error { color: var(--bad); font-weight: 600; }
.hold { color: var(--warn); font-weight: 600; }
.controls { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin: 0.25rem 0 0.5rem; }
.controls form { margin: 0; }
button { font: inherit; padding: 0.35rem 0.8rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--bg); color: var(--accent); cursor: pointer; min-height: 2.25rem; }
button:hover { background: var(--panel); }
button:focus-visible, a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
button[data-action="reset"], button[data-action="cancel"] { border-color: var(--bad); color: var(--bad); }
.outcome { margin: 0; flex-basis: 100%; min-height: 1.4em; }
.buttons { display: flex; flex-wrap: wrap; gap: 0.5rem; }
.buttons:empty { display: none; }
form.start { display: flex; flex-wrap: wrap; gap: 0.25rem 0.5rem; align-items: flex-end; flex: 1 1 24rem; }
form.start[hidden] { display: none; }
form.start label { flex-basis: 100%; font-size: 0.8rem; color: var(--muted); }
form.start textarea { flex: 1 1 16rem; font: 0.85rem ui-monospace, SFMono-Regular, Menlo, monospace; min-height: 2.25rem; padding: 0.3rem; border: 1px solid var(--line); border-radius: 6px; resize: vertical; }
.bar.small { height: 0.7rem; min-width: 6rem; }
.fill.done { background: var(--ok); }
.fill.unknown { width: 100%; background: repeating-linear-gradient(45deg, var(--panel), var(--panel) 6px, var(--line) 6px, var(--line) 12px); }
td.part-bar { width: 40%; vertical-align: middle; }
.chart { margin: 0.5rem 0; }
.chart svg { display: block; width: 100%; height: 5rem; background: var(--panel); border-radius: 4px; }
.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; vector-effect: non-scaling-stroke; }
.chart .area { fill: var(--accent); fill-opacity: 0.12; stroke: none; }
.chart figcaption { font-size: 0.8rem; }
details.stack { margin-top: 0.25rem; color: var(--fg); font-weight: normal; }
details.stack summary { cursor: pointer; color: var(--muted); font-size: 0.85rem; }
details.stack pre { font: 0.75rem/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; overflow-wrap: anywhere; background: var(--panel); padding: 0.5rem; border-radius: 4px; max-height: 16rem; overflow: auto; }
div.error p { margin: 0.25rem 0; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
a { color: var(--accent); }
@media (max-width: 40rem) { body { font-size: 14px; } .figures { grid-template-columns: repeat(2, 1fr); } }
`;

/**
 * The page's script: polls the live figures (at most once a second),
 * replaces the parts that changed and keeps the running jobs first; sends
 * the controls as same-origin POSTs with the header the server requires
 * (the start form's params and a dead letter's key as JSON), after a
 * confirmation where asked.
 */
export const DASHBOARD_JS: string = `(() => {
  'use strict';
  const body = document.body;
  const base = body.dataset.base || '';
  const pollMs = Math.max(1000, Number(body.dataset.pollMs) || 1000);
  const note = document.querySelector('[data-live-note]');
  const main = document.querySelector('main');
  const query = new URLSearchParams(location.search);

  /** The running jobs first: moved only while nobody is typing in a form of the page. */
  function reorder(order) {
    if (!Array.isArray(order) || !main) return;
    const sections = [...main.querySelectorAll(':scope > section.job')];
    const now = sections.map((s) => s.dataset.job);
    if (now.join('\\n') === order.join('\\n')) return;
    if (main.contains(document.activeElement) && document.activeElement.matches('textarea, input')) return;
    const byJob = new Map(sections.map((s) => [s.dataset.job, s]));
    for (const job of order) if (byJob.has(job)) main.appendChild(byJob.get(job));
  }

  async function poll() {
    try {
      const params = new URLSearchParams();
      if (query.get('job') && query.get('dead')) {
        params.set('job', query.get('job'));
        params.set('dead', query.get('dead'));
      }
      const res = await fetch(base + '/live.json?' + params, { credentials: 'same-origin', headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const live = await res.json();
      for (const section of document.querySelectorAll('section.job')) {
        const parts = live.jobs[section.dataset.job];
        if (!parts) continue;
        for (const region of section.querySelectorAll('[data-live]')) {
          const html = parts[region.dataset.live];
          if (typeof html === 'string' && region.innerHTML !== html) region.innerHTML = html;
        }
        const start = section.querySelector('form[data-start]');
        if (start && typeof parts.canStart === 'boolean') start.hidden = !parts.canStart;
      }
      reorder(live.order);
      if (note) note.textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
    } catch (e) {
      if (note) note.textContent = 'Cannot reach the app (' + e.message + '); retrying.';
    }
  }

  let timer = setInterval(poll, pollMs);

  document.addEventListener('submit', async (event) => {
    const form = event.target;
    const button = form.querySelector('button[data-action]');
    if (!button) return;
    event.preventDefault();
    const ask = button.dataset.confirm;
    if (ask && !window.confirm(ask)) return;
    const outcome = form.closest('section.job').querySelector('.outcome');
    const textarea = form.querySelector('textarea[name="params"]');
    const sent = textarea ? { params: textarea.value } : button.dataset.letter ? { letter: JSON.parse(button.dataset.letter) } : undefined;
    button.disabled = true;
    try {
      const headers = { 'x-parallel-worker-dashboard': '1', accept: 'application/json' };
      if (sent) headers['content-type'] = 'application/json';
      const res = await fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers,
        body: sent ? JSON.stringify(sent) : undefined,
      });
      const reply = await res.json().catch(() => ({}));
      outcome.textContent = (Array.isArray(reply.message) ? reply.message.join('; ') : reply.message) || ('HTTP ' + res.status);
      outcome.className = 'outcome' + (res.ok ? '' : ' error');
    } catch (e) {
      outcome.textContent = 'Not sent: ' + e.message;
      outcome.className = 'outcome error';
    } finally {
      button.disabled = false;
      clearInterval(timer);
      await poll();
      timer = setInterval(poll, pollMs);
    }
  });
})();
`;
