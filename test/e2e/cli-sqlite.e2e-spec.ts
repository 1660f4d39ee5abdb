import Database from 'better-sqlite3';
import {
  existsSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunRecord } from '../../lib';
import { SqliteStore } from '../../lib/store/sql/sqlite.store';
import { runCli } from '../support/cli';
import { startFixture } from '../support/fixture';
import {
  countProcessed as processed,
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
} from '../support/postgres';

const ROWS = 20_000;

/** No Redis from the environment: where the store is comes from the flags or the working directory. */
const NO_REDIS = { PARALLEL_WORKER_REDIS_URL: '', REDIS_URL: '' };

const cli = (...args: string[]) => runCli(args, NO_REDIS);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CLI from a second terminal, against fixture hosts that keep the job in a SQLite file. */
describe('nestjs-parallel-worker CLI over a SQLite store (e2e)', () => {
  const tables: string[] = [];
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-cli-sqlite-'));
    file = join(dir, 'parallel-worker.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });

  const hostEnv = async (extra: Record<string, number> = {}) => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    return {
      table,
      env: {
        DATABASE_URL,
        FIXTURE_TABLE: table,
        FIXTURE_STORAGE_URL: `sqlite:${file}`,
        FIXTURE_WORKERS: 2,
        FIXTURE_RANGE_SIZE: 500,
        ...extra,
      },
    };
  };

  it('pauses, shows, resumes a running job; shows its history and dead letters; retries them; resets', async () => {
    const { table, env } = await hostEnv({
      FIXTURE_HANDLER_MS: 150,
      FIXTURE_FAIL_ALWAYS: 1234,
      FIXTURE_MAX_ATTEMPTS: 1,
      FIXTURE_TOTAL: 1,
    });
    const host = startFixture(env);
    const opts = ['--store', `sqlite:${file}`];
    while ((await processed(table)) < 2000) await sleep(50);

    const paused = await cli('pause', 'items', ...opts);
    expect(paused).toMatchObject({ code: 0 });
    expect(paused.out).toMatch(
      /^Paused run [0-9a-f-]+ of "items"; every host follows within a second\./,
    );
    await sleep(1500); // a second to obey, then the ranges in flight finish
    const atPause = await processed(table);
    await sleep(1500);
    expect(await processed(table)).toBe(atPause);
    const status = await cli('status', 'items', ...opts);
    expect(status.out).toMatch(/^job items: paused \(run [0-9a-f-]+\)\n/);
    expect(status.out).toMatch(/% \| [\d,]+\/20,000 ids \|/);
    expect(status.out).toContain(
      `leases per host: ${hostname()}:${host.child.pid}:`,
    );
    // With no --store and no Redis named, the default file in the working directory.
    const byDefault = await runCli(['status', 'items'], NO_REDIS, dir);
    expect(byDefault).toMatchObject({ code: 0 });
    expect(byDefault.out).toMatch(/^job items: paused \(run [0-9a-f-]+\)\n/);
    const json = JSON.parse(
      (await cli('status', 'items', '--json', ...opts)).out,
    );
    expect(json).toMatchObject({
      job: 'items',
      state: 'paused',
      ids: { total: ROWS },
      ranges: { dead: expect.any(Number) },
    });
    expect(
      Object.keys(json.leasesByHost).some((h) =>
        h.startsWith(`${hostname()}:${host.child.pid}:`),
      ),
    ).toBe(true);

    expect((await cli('resume', 'items', ...opts)).out).toMatch(/^Resumed run/);
    const result = await host.exited;
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS - 500,
      ranges: { dead: 1 },
    });
    const runId = result.summary?.runId as string;

    const history = await cli('history', 'items', ...opts);
    expect(history).toMatchObject({ code: 0 });
    expect(history.out).toContain(runId.slice(0, 8));
    expect(history.out).toMatch(/completed/);
    const records = JSON.parse(
      (await cli('history', 'items', '--json', ...opts)).out,
    ) as RunRecord[];
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      runId,
      job: 'items',
      status: 'completed',
      deadLetters: 1,
    });

    const dead = await cli('dead', 'items', ...opts);
    expect(dead).toMatchObject({ code: 0 });
    expect(dead.out).toMatch(/^job items: 1 dead letter \(oldest first\)/);
    expect(dead.out).toContain(runId.slice(0, 8));
    const deadJson = JSON.parse(
      (await cli('dead', 'items', '--json', ...opts)).out,
    );
    expect(deadJson).toMatchObject({ total: 1, offset: 0 });
    expect(deadJson.deadLetters).toHaveLength(1);
    expect(deadJson.deadLetters[0].runId).toBe(runId);
    expect(deadJson.deadLetters[0].range.ids).toContain(1234);

    const retried = await cli('retry-dead', 'items', ...opts);
    expect(retried.out).toBe(
      '1 dead-lettered ranges of "items" will be handed out again by its next run.\n',
    );
    const again = await startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: table,
      FIXTURE_STORAGE_URL: `sqlite:${file}`,
      FIXTURE_WORKERS: 1,
    }).exited;
    expect(again.summary).toMatchObject({ status: 'completed', ids: 500 });
    expect(await pgCounts(table)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    expect((await cli('status', 'items', ...opts)).out).toMatch(
      /^job items: completed/,
    );
    expect((await cli('reset', 'items', ...opts)).out).toBe(
      '"items" reset: its next run starts from the first row.\n',
    );
    expect((await cli('status', 'items', ...opts)).out).toBe(
      'job items: idle; its next run starts from the first row\n',
    );
  });

  it('cancels a running job on every host; reset is refused while it runs', async () => {
    const { table, env } = await hostEnv({ FIXTURE_HANDLER_MS: 150 });
    const host = startFixture(env);
    const opts = ['--store', `sqlite:${file}`];
    while ((await processed(table)) < 1000) await sleep(50);

    const refused = await cli('reset', 'items', ...opts);
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/^Cannot reset "items": /);
    const cancelled = await cli('cancel', 'items', ...opts);
    expect(cancelled).toMatchObject({ code: 0 });
    expect(cancelled.out).toMatch(
      /^Cancelled run [0-9a-f-]+ of "items"; every host follows within a second\./,
    );
    const result = await host.exited;
    expect(result.summary).toMatchObject({ status: 'stopped' });
    expect(await processed(table)).toBeLessThan(ROWS);
    expect((await cli('status', 'items', ...opts)).out).toMatch(
      /^job items: stopped/,
    );
    const again = await cli('cancel', 'items', ...opts);
    expect(again).toMatchObject({
      code: 2,
      out: '"items" has no active run to cancel (it is stopped).\n',
    });
  });

  it('says what to do when the file is missing, not a database, not a store, or newer', async () => {
    const missing = join(dir, 'nope', 'parallel-worker.db');
    const gone = await cli('status', 'items', '--store', `sqlite:${missing}`);
    expect(gone.code).toBe(2);
    expect(gone.out).toContain(
      `--store sqlite:${missing}: there is no file ${missing}.`,
    );
    expect(existsSync(join(dir, 'nope'))).toBe(false);

    // Nothing named and no default file: the CLI says so and creates nothing.
    const nothing = await runCli(['status', 'items'], NO_REDIS, dir);
    expect(nothing.code).toBe(2);
    expect(nothing.out).toMatch(
      /^No store found: no --store or --redis given, \$PARALLEL_WORKER_REDIS_URL and \$REDIS_URL are not set, and there is no parallel-worker\.db in /,
    );
    expect(nothing.out).toContain('--store sqlite:<path>');
    expect(existsSync(file)).toBe(false);

    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a database, but long enough to hold a header\n');
    const size = statSync(text).size;
    const notDb = await cli('status', 'items', '--store', `sqlite:${text}`);
    expect(notDb.code).toBe(2);
    expect(notDb.out).toContain(
      `--store sqlite:${text}: ${text} is not a SQLite database.`,
    );
    expect(statSync(text).size).toBe(size);

    const other = join(dir, 'other.db');
    new Database(other).exec('CREATE TABLE t (x)');
    const notStore = await cli('status', 'items', '--store', `sqlite:${other}`);
    expect(notStore.code).toBe(2);
    expect(notStore.out).toContain(
      `--store sqlite:${other}: ${other} holds no nestjs-parallel-worker store`,
    );

    const store = new SqliteStore(file);
    await store.job('items').start({ runId: 'run-1' });
    await store.close();
    const unknown = await cli('status', 'nope', '--store', `sqlite:${file}`);
    expect(unknown).toMatchObject({
      code: 2,
      out: expect.stringContaining(
        `No job "nope" in SQLite file ${file} under prefix "parallel-worker". Jobs there: items.`,
      ),
    });
    // A long write transaction of another process (a SQLite shell, a backup) past the busy timeout.
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    const locked = await cli('pause', 'items', '--store', `sqlite:${file}`);
    holder.exec('ROLLBACK');
    holder.close();
    expect(locked.code).toBe(2);
    expect(locked.out).toContain(
      `--store sqlite:${file}: ${file} stayed locked by another process for more than 5000 ms.`,
    );
    const newer = new Database(file);
    newer.exec('UPDATE pw_schema SET version = 99');
    newer.close();
    const tooNew = await cli('status', 'items', '--store', `sqlite:${file}`);
    expect(tooNew.code).toBe(2);
    expect(tooNew.out).toMatch(
      /schema version 99, newer than this nestjs-parallel-worker knows \(\d+\)/,
    );
    expect(tooNew.out).toContain(`--store sqlite:${file}`);

    const both = await cli(
      'status',
      'items',
      '--store',
      `sqlite:${file}`,
      '--redis',
      'redis://127.0.0.1:6379',
    );
    expect(both.code).toBe(2);
    expect(both.out).toMatch(/^Give one store: --store or --redis/);
    const help = await cli('--help');
    expect(help.out).toContain('--store sqlite:<path>');
    expect(help.out).toContain(
      '--cluster                  --redis lists Redis Cluster nodes: [user:password@]host:port[,...]',
    );
    const redisUrl = await cli('status', 'items', '--store', 'redis://x:1');
    expect(redisUrl.code).toBe(2);
    expect(redisUrl.out).toMatch(/^--store takes sqlite:<path>/);
  });
});
