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
.controls { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin: 0.25rem 0 0.5rem; }
.controls form { margin: 0; }
button { font: inherit; padding: 0.35rem 0.8rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--bg); color: var(--accent); cursor: pointer; min-height: 2.25rem; }
button:hover { background: var(--panel); }
button:focus-visible, a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
button[data-action="reset"], button[data-action="cancel"] { border-color: var(--bad); color: var(--bad); }
.outcome { margin: 0; flex-basis: 100%; min-height: 1.4em; }
a { color: var(--accent); }
@media (max-width: 40rem) { body { font-size: 14px; } .figures { grid-template-columns: repeat(2, 1fr); } }
`;

/**
 * The page's script: polls the live figures (at most once a second) and
 * replaces the parts that changed; sends the controls as same-origin POSTs
 * with the header the server requires, after a confirmation where asked.
 */
export const DASHBOARD_JS: string = `(() => {
  'use strict';
  const body = document.body;
  const base = body.dataset.base || '';
  const pollMs = Math.max(1000, Number(body.dataset.pollMs) || 1000);
  const note = document.querySelector('[data-live-note]');
  const query = new URLSearchParams(location.search);

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
      }
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
    const outcome = form.closest('.controls').querySelector('.outcome');
    button.disabled = true;
    try {
      const res = await fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'x-parallel-worker-dashboard': '1', accept: 'application/json' },
      });
      const reply = await res.json().catch(() => ({}));
      outcome.textContent = reply.message || ('HTTP ' + res.status);
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
