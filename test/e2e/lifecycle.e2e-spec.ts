import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFixture } from '../support/fixture';
import {
  addPgItems,
  countProcessed as processed,
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
} from '../support/postgres';
import { REDIS_URL } from '../support/redis-server';

const ROWS = 20_000;

const waitUntil = async (check: () => Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** `p`, or a failure saying what did not happen within `ms` (the timer never outlives the test). */
async function within<T>(
  p: Promise<T>,
  ms: number,
  what: () => string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(() => reject(new Error(what())), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A real Nest app's life with the module: start, fail, stop and exit, as users run it. */
describe('app lifecycle (e2e)', () => {
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });
  const table = async () => {
    const t = await createPgItems(ROWS);
    tables.push(t);
    return t;
  };

  it('storage: a Redis URL: the module names its client, and the run-once app exits by itself after app.close()', async () => {
    const prefix = `pw-url-${randomBytes(4).toString('hex')}`;
    const host = startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: await table(),
      FIXTURE_STORAGE_URL: REDIS_URL,
      FIXTURE_PREFIX: prefix,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_HANDLER_MS: 20,
    });
    await waitUntil(
      async () =>
        execFileSync('redis-cli', ['-u', REDIS_URL, 'client', 'list'])
          .toString()
          .includes(`name=${prefix}:${hostname()}:${host.child.pid}`),
      20_000,
    );
    const started = Date.now();
    const result = await within(
      host.exited,
      60_000,
      () => `the app did not exit:\n${host.output().slice(-2000)}`,
    );
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({ status: 'completed', ids: ROWS });
    console.log(
      `storage as a URL: ${ROWS} rows, the process exited ${((Date.now() - started) / 1000).toFixed(1)} s after the run began; its client was named ${prefix}:${hostname()}:<pid>`,
    );
  });

  it('Redis down at run(): a StoreUnavailableError within storeConnectTimeoutMs, naming the address without the password, then the process exits', async () => {
    const started = Date.now();
    const result = await startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: 'unused',
      FIXTURE_STORAGE_URL: 'redis://:hunter2@127.0.0.1:1',
      FIXTURE_STORE_TIMEOUT_MS: 2000,
      FIXTURE_WORKERS: 2,
    }).exited;
    const seconds = (Date.now() - started) / 1000;
    expect(result.code).toBe(1);
    expect(result.unavailable?.message).toMatch(
      /^Job "items" did not start: the coordination store \(Redis at redis:\/\/\*\*\*@127\.0\.0\.1:1\) did not answer within 2000 ms \(storeConnectTimeoutMs\): .*ECONNREFUSED/,
    );
    expect(result.output).not.toContain('hunter2');
    expect(result.output).not.toContain('Unhandled error event');
    // One warning for the outage, not one per reconnect.
    expect(
      result.output.match(/ECONNREFUSED 127\.0\.0\.1:1; reconnecting/g),
    ).toHaveLength(1);
    expect(seconds).toBeLessThan(15);
    console.log(
      `Redis on a closed port: StoreUnavailableError, process exited ${seconds.toFixed(1)} s after start (storeConnectTimeoutMs 2000)`,
    );
  });

  it('Ctrl+C in a cron app while a run is active: the run stops gracefully, no tick starts or joins a run after it, and the process ends', async () => {
    const t = await table();
    const host = startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: t,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-cron-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 200,
      FIXTURE_HANDLER_MS: 100,
      FIXTURE_CRON: 1,
      FIXTURE_CRON_RUNS: 1,
    });
    await waitUntil(async () => (await processed(t)) >= ROWS * 0.2);
    host.child.kill('SIGINT');
    const signalledAt = Date.now();
    const result = await within(
      host.exited,
      30_000,
      () => `the app did not exit:\n${host.output().slice(-2000)}`,
    );
    const after = result.output.slice(
      result.output.indexOf('SIGINT: stopping gracefully'),
    );
    expect(result.signal).toBe('SIGINT');
    expect(result.summary).toMatchObject({ status: 'stopped' });
    expect(after).toContain(
      'SIGINT: runs stopped; the app has no SIGINT handler of its own',
    );
    // Ticks during the stop are refused; none starts or joins a run.
    expect(after).not.toMatch(/(starting|joining) run/);
    const counts = await pgCounts(t);
    expect(counts.duplicated).toEqual([]);
    expect(counts.missed.length).toBeGreaterThan(0);
    console.log(
      `cron app, SIGINT at ${ROWS - counts.missed.length} of ${ROWS} rows: stopped and exited ${((Date.now() - signalledAt) / 1000).toFixed(1)} s later`,
    );
  });

  it('a cron app keeps its workers between ticks: a tick with new rows is served by the warm workers, and SIGTERM ends them all', async () => {
    const t = await table();
    const host = startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: t,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-warm-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_CRON: 1,
      FIXTURE_CRON_RUNS: 1,
      FIXTURE_TRACE_PIDS: 1,
    });
    await host.waitFor(new RegExp(`SUMMARY .*"ids":${ROWS},`));
    await addPgItems(t, 1000);
    const [line] = await host.waitFor(/SUMMARY .*"ids":1000,.*/);
    expect(JSON.parse(line.slice('SUMMARY '.length))).toMatchObject({
      status: 'completed',
      workers: { started: 0, restarted: 0 },
    });
    const workers = [...host.output().matchAll(/WORKER_UP pid=(\d+)/g)].map(
      (m) => Number(m[1]),
    );
    expect(workers).toHaveLength(2);
    host.child.kill('SIGTERM');
    const result = await within(
      host.exited,
      30_000,
      () => `the app did not exit:\n${host.output().slice(-2000)}`,
    );
    expect(result.signal).toBe('SIGTERM');
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitUntil(() => Promise.resolve(!workers.some(alive)), 10_000);
    expect(await pgCounts(t)).toMatchObject({
      total: ROWS + 1000,
      once: ROWS + 1000,
      missed: [],
      duplicated: [],
    });
  });

  it('run(job, { from: null }) on a second host while the run is active: a RunRefusedError, as on one host', async () => {
    const t = await table();
    // The range after the first 1,000 rows is held (attempt 1) until the file exists: the run is active, however
    // slowly the second host starts.
    const dir = mkdtempSync(join(tmpdir(), 'pw-hold-'));
    const hold = join(dir, 'go');
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: t,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-from-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 1,
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_HANDLER_MS: 50,
      FIXTURE_HOLD_IDS: '1001',
      FIXTURE_HOLD_FILE: hold,
    };
    const first = startFixture(env);
    await waitUntil(async () => (await processed(t)) >= 1000);
    const second = await startFixture({ ...env, FIXTURE_FROM_START: 1 }).exited;
    writeFileSync(hold, '');
    expect(second.code).toBe(1);
    expect(second.refused?.message).toMatch(
      /^run [0-9a-f-]+ is active \(a host holds a lease of it, or took part in it within leaseMs and has not stopped\); wait for it or stop it before moving the cursor$/,
    );
    expect(second.output).not.toMatch(/ReplyError|evalsha/i);
    expect((await first.exited).summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
    });
    rmSync(dir, { recursive: true, force: true });
  });
});
