#!/usr/bin/env node
// The HTTP checks of run.sh's dashboard step, against the README's Dashboard app
// (`ParallelWorkerDashboardModule.register({ path: 'jobs', controls: true })`, the
// Quick start's `users` job) on Express or Fastify:
//
//   node dashboard-check.js <base url> idle
//     GET  /jobs                 200 text/html, the users job's <section>, links to the assets
//     GET  /jobs/live.json       200 JSON { jobs: { users: { stats, runs, dead } } } (strings)
//     GET  /jobs/dashboard.js    200 text/javascript, not empty
//     GET  /jobs/dashboard.css   200 text/css, not empty
//     POST /jobs/users/pause     403 without the x-parallel-worker-dashboard header
//     POST /jobs/users/pause     409 { message: …no active run… } with it (no run is active)
//     POST /jobs/nope/pause      404 with it (no such job)
//
//   node dashboard-check.js <base url> done <rows>
//     (after one run of users over <rows> rows by another process on the same store)
//     GET  /jobs/live.json       its recent runs: one "completed" run of <rows> ids, state completed
//     GET  /jobs                 the same run (its id's first 8 characters) in the page
//     POST /jobs/users/reset     200 { ok: true } with the header; then the state is idle
//
// Prints one line per check; exits 1 naming the first check that failed.
'use strict';

const [base, phase, rowsArg] = process.argv.slice(2);
const HEADER = 'x-parallel-worker-dashboard';

function fail(message) {
  console.error(`dashboard-check: FAIL ${message}`);
  process.exit(1);
}

function ok(message) {
  console.log(`dashboard-check: ok ${message}`);
}

async function http(method, path, headers = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    redirect: 'manual',
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body,
  };
}

function expectStatus(what, res, status, type) {
  if (res.status !== status)
    fail(
      `${what}: status ${res.status}, expected ${status}: ${res.body.slice(0, 300)}`,
    );
  if (type && !res.type.startsWith(type))
    fail(`${what}: content-type "${res.type}", expected ${type}`);
}

function parse(what, res) {
  try {
    return JSON.parse(res.body);
  } catch (e) {
    fail(`${what}: not JSON (${e.message}): ${res.body.slice(0, 300)}`);
  }
}

async function live() {
  const res = await http('GET', '/live.json');
  expectStatus('GET /live.json', res, 200, 'application/json');
  const body = parse('GET /live.json', res);
  const users = body?.jobs?.users;
  if (
    !users ||
    ['stats', 'runs', 'dead'].some((k) => typeof users[k] !== 'string')
  )
    fail(
      `GET /live.json: no jobs.users.{stats,runs,dead} strings: ${res.body.slice(0, 300)}`,
    );
  return { users, jobs: Object.keys(body.jobs) };
}

const checks = {
  async idle() {
    let res = await http('GET', '');
    expectStatus('GET', res, 200, 'text/html');
    if (!res.body.includes('<section class="job" id="job-users"'))
      fail(
        `GET: no <section class="job" id="job-users" in the page: ${res.body.slice(0, 300)}`,
      );
    const path = new URL(base).pathname;
    for (const asset of ['dashboard.js', 'dashboard.css'])
      if (!res.body.includes(`${path}/${asset}`))
        fail(`GET: the page does not link ${path}/${asset}`);
    ok(
      `GET ${path} 200 ${res.type}, ${res.body.length} bytes, section#job-users`,
    );

    const { jobs } = await live();
    ok(`GET ${path}/live.json 200 JSON, jobs: ${jobs.join(', ')}`);

    for (const [asset, type] of [
      ['dashboard.js', 'text/javascript'],
      ['dashboard.css', 'text/css'],
    ]) {
      res = await http('GET', `/${asset}`);
      expectStatus(`GET /${asset}`, res, 200, type);
      if (!res.body.trim()) fail(`GET /${asset}: empty`);
      ok(`GET ${path}/${asset} 200 ${res.type}, ${res.body.length} bytes`);
    }

    res = await http('POST', '/users/pause');
    expectStatus('POST /users/pause without the header', res, 403);
    ok(`POST ${path}/users/pause without ${HEADER}: 403`);

    res = await http('POST', '/users/pause', { [HEADER]: '1' });
    expectStatus(
      `POST /users/pause with ${HEADER}: 1 (no active run)`,
      res,
      409,
      'application/json',
    );
    const { message } = parse('POST /users/pause', res);
    if (!/no active run/.test(String(message)))
      fail(
        `POST /users/pause: message ${JSON.stringify(message)}, expected "…no active run…"`,
      );
    ok(
      `POST ${path}/users/pause with ${HEADER}: 409 ${JSON.stringify(message)}`,
    );

    res = await http('POST', '/nope/pause', { [HEADER]: '1' });
    expectStatus(`POST /nope/pause with ${HEADER}: 1`, res, 404);
    ok(`POST ${path}/nope/pause with ${HEADER}: 404`);
  },

  async done() {
    const rows = Number(rowsArg);
    if (!Number.isInteger(rows) || rows <= 0) fail(`rows: ${rowsArg}`);
    const ids = rows.toLocaleString('en-US');
    const path = new URL(base).pathname;
    const { users } = await live();
    // One row of the runs table: <code title="run id">run id (8)</code>, the status badge, …, <td>ids</td>.
    const run = new RegExp(
      `<tr><td><code title="[0-9a-f-]+">([0-9a-f-]{8})</code></td><td><span class="badge [^"]+">completed</span></td>.*?<td>${ids}</td>`,
    ).exec(users.runs);
    if (!run)
      fail(
        `GET /live.json: no completed run of ${ids} ids in users.runs: ${users.runs.slice(0, 600)}`,
      );
    if (
      !/data-figure="State"><span class="badge [^"]+">completed</.test(
        users.stats,
      )
    )
      fail(
        `GET /live.json: users' state is not completed: ${users.stats.slice(0, 600)}`,
      );
    if (!users.stats.includes(`data-figure="Ids done">${ids}`))
      fail(
        `GET /live.json: users' "Ids done" is not ${ids}: ${users.stats.slice(0, 600)}`,
      );
    ok(
      `GET ${path}/live.json: state completed, ids done ${ids}, run ${run[1]}… completed with ${ids} ids`,
    );

    let res = await http('GET', '');
    expectStatus('GET', res, 200, 'text/html');
    if (!res.body.includes(`">${run[1]}</code>`))
      fail(`GET: run ${run[1]} is not in the page`);
    ok(`GET ${path}: shows run ${run[1]}…`);

    res = await http('POST', '/users/reset', { [HEADER]: '1' });
    expectStatus(
      `POST /users/reset with ${HEADER}: 1`,
      res,
      200,
      'application/json',
    );
    const body = parse('POST /users/reset', res);
    if (body.ok !== true) fail(`POST /users/reset: ${res.body}`);
    const after = await live();
    if (
      !/data-figure="State"><span class="badge [^"]+">idle</.test(
        after.users.stats,
      )
    )
      fail(
        `GET /live.json after the reset: users' state is not idle: ${after.users.stats.slice(0, 600)}`,
      );
    ok(
      `POST ${path}/users/reset: 200 ${JSON.stringify(body.message)}; state idle`,
    );
  },
};

if (!base || !checks[phase]) {
  console.error('usage: node dashboard-check.js <base url> idle | done <rows>');
  process.exit(2);
}
checks[phase]().catch((e) => fail(`${phase}: ${e.stack ?? e}`));
