import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../../lib';
import { type FixtureRun, startFixture } from '../support/fixture';
import {
  countProcessed as processed,
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
} from '../support/postgres';

const ROWS = 20_000;

const waitUntil = async (check: () => Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Ends a primary and its workers at once, as a crash or `kill -9` of the process group would. */
const killTree = (run: FixtureRun) => {
  const pid = run.child.pid as number;
  const children = execFileSync('pgrep', ['-P', String(pid)])
    .toString()
    .trim()
    .split('\n')
    .map(Number);
  for (const each of [pid, ...children]) process.kill(each, 'SIGKILL');
};

/** Primaries of the fixture app on one machine, coordinating through one SQLite file. */
describe("the default store and storage: 'sqlite:<path>' on real cluster workers (e2e)", () => {
  const tables: string[] = [];
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'pw-sqlite-e2e-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });

  /** On the default store: no storage option, so the app's `parallel-worker.db` in its working directory `dir`. */
  const envFor = async (extra: Record<string, number | string> = {}) => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    return {
      table,
      env: {
        DATABASE_URL,
        FIXTURE_TABLE: table,
        FIXTURE_CWD: dir,
        FIXTURE_WORKERS: 2,
        FIXTURE_RANGE_SIZE: 200,
        ...extra,
      },
    };
  };

  it('two primaries on one machine over one file work on the job together: every row exactly once', async () => {
    // A file named by the option, in another directory than the apps' own.
    const named = join(dir, 'state', 'jobs.db');
    mkdirSync(join(dir, 'state'));
    const { table, env } = await envFor({
      FIXTURE_HANDLER_MS: 20,
      FIXTURE_STORAGE_URL: `sqlite:${named}`,
    });
    const results = await Promise.all(
      [startFixture(env), startFixture(env)].map((h) => h.exited),
    );
    for (const r of results) expect(r.code).toBe(0);
    expect(existsSync(named)).toBe(true);
    expect(existsSync(join(dir, 'parallel-worker.db'))).toBe(false);
    const summaries = results.map((r) => r.summary as RunSummary);
    expect(new Set(summaries.map((s) => s.runId)).size).toBe(1);
    for (const s of summaries)
      expect(s).toMatchObject({ status: 'completed', ids: ROWS });
    expect(summaries.reduce((n, s) => n + s.host.ids, 0)).toBe(ROWS);
    for (const s of summaries) expect(s.host.ids).toBeGreaterThan(0);
    expect(await pgCounts(table)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    console.log(
      `2 primaries x 2 workers on one SQLite file: ${ROWS} rows once, per host ${summaries.map((s) => s.host.ids).join('/')}`,
    );
  });

  it('a primary SIGKILLed with its workers at about 40%, then started again on the file: no row lost, only leased ranges twice', async () => {
    const { table, env } = await envFor({
      FIXTURE_HANDLER_MS: 100,
      FIXTURE_LEASE_MS: 2000,
    });
    const first = startFixture(env);
    await waitUntil(async () => (await processed(table)) >= ROWS * 0.4);
    killTree(first);
    await first.exited;
    const atKill = await processed(table);
    // The default store: the file in the app's working directory.
    expect(existsSync(join(dir, 'parallel-worker.db'))).toBe(true);

    const second = await startFixture(env).exited;
    expect(second.code).toBe(0);
    // It joined the run the killed primary left (the state was in the file), and took over its leases.
    expect(second.summary).toMatchObject({ status: 'completed' });
    expect(second.output).toContain('was re-leased after its lease expired');
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    // Only ranges the killed primary held can have run twice: 2 workers and 2 prefetched, 200 ids each.
    expect(counts.duplicated.length).toBeLessThanOrEqual(4 * 200);
    // The second process did not start over: it handled what was left, not every row again.
    expect(second.summary?.host.ids).toBeLessThan(ROWS - atKill + 4 * 200 + 1);
    console.log(
      `SIGKILL at ${atKill} of ${ROWS} rows, then a new primary on the file: 0 lost, ${counts.duplicated.length} handled twice, ${second.summary?.host.ids} handled by the new one`,
    );
  });

  it('SIGTERM at about 40%, then started again on the file: no row lost, none handled twice', async () => {
    const { table, env } = await envFor({ FIXTURE_HANDLER_MS: 100 });
    const first = startFixture(env);
    await waitUntil(async () => (await processed(table)) >= ROWS * 0.4);
    first.child.kill('SIGTERM');
    const stopped = await first.exited;
    expect(stopped.summary).toMatchObject({ status: 'stopped' });
    const atStop = await processed(table);
    expect(atStop).toBeLessThan(ROWS);

    const second = await startFixture(env).exited;
    expect(second.code).toBe(0);
    expect(second.summary).toMatchObject({ status: 'completed' });
    expect(await pgCounts(table)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    console.log(
      `SIGTERM at ${atStop} of ${ROWS} rows, then a new primary on the file: 0 lost, 0 handled twice`,
    );
  });
});
