import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { runCli, watchCli } from '../support/cli';
import { startFixture } from '../support/fixture';
import {
  countProcessed as processed,
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
} from '../support/postgres';
import { REDIS_URL } from '../support/redis-server';

const ROWS = 20_000;

const cli = (...args: string[]) => runCli(args);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CLI from a second terminal, against a running fixture host that shares its Redis. */
describe('nestjs-parallel-worker CLI (e2e)', () => {
  let table: string;
  afterAll(async () => dropPgTable(table));

  it('pauses, shows, resumes a running job and retries its dead letters', async () => {
    table = await createPgItems(ROWS);
    const prefix = `pw-cli-${randomBytes(4).toString('hex')}`;
    const host = startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: prefix,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_HANDLER_MS: 150,
      FIXTURE_FAIL_ALWAYS: 1234,
      FIXTURE_MAX_ATTEMPTS: 1,
      FIXTURE_TOTAL: 1,
    });
    const opts = ['--redis', REDIS_URL, '--prefix', prefix];
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
    // Hosts are named so a person can find them: hostname, pid, a random part.
    expect(status.out).toContain(
      `leases per host: ${hostname()}:${host.child.pid}:`,
    );
    expect(status.out).toMatch(/leases per host: \S+:\d+:[0-9a-f]{6} \d+/);
    // Into a pipe, --watch writes one view after another, without terminal codes; Ctrl+C leaves it.
    const watched = await watchCli(
      ['status', 'items', '--watch', ...opts],
      2500,
    );
    expect(watched.code).toBe(0);
    expect(watched.out).not.toContain('\x1b');
    expect(
      watched.out.match(/^job items: paused/gm)?.length,
    ).toBeGreaterThanOrEqual(2);
    // Where the store is can come from the environment, as in the app's own config.
    const fromEnv = await runCli(['status', 'items'], {
      PARALLEL_WORKER_REDIS_URL: REDIS_URL,
      PARALLEL_WORKER_PREFIX: prefix,
    });
    expect(fromEnv.out).toMatch(/^job items: paused/);
    // --json for scripts: every figure, hosts by their full id.
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

    const retried = await cli('retry-dead', 'items', ...opts);
    expect(retried.out).toBe(
      '1 dead-lettered ranges of "items" will be handed out again by its next run.\n',
    );
    const again = await startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: prefix,
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
    // After a reset, status says what the next run does, not the last run's 100%.
    expect((await cli('reset', 'items', ...opts)).out).toBe(
      '"items" reset: its next run starts from the first row.\n',
    );
    expect((await cli('status', 'items', ...opts)).out).toBe(
      'job items: idle; its next run starts from the first row\n',
    );
  });

  it('says clearly when the job is unknown or Redis cannot be reached', async () => {
    const unknown = await cli(
      'status',
      'nope',
      '--redis',
      REDIS_URL,
      '--prefix',
      'pw-cli-none',
    );
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain(
      `No job "nope" in Redis at ${REDIS_URL} under prefix "pw-cli-none".`,
    );
    const down = await cli('status', 'items', '--redis', 'redis://127.0.0.1:1');
    expect(down.code).toBe(2);
    expect(down.out).toMatch(
      /^Cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
    const usage = await cli('frobnicate', 'items', '--redis', REDIS_URL);
    expect(usage.out).toContain('Unknown command "frobnicate".');
    const nowhere = await runCli(['status', 'items'], {
      PARALLEL_WORKER_REDIS_URL: '',
      REDIS_URL: '',
    });
    expect(nowhere).toMatchObject({
      code: 2,
      out: expect.stringMatching(
        /^Say where the store is: --redis <url> \(or set PARALLEL_WORKER_REDIS_URL or REDIS_URL\)/,
      ),
    });
    const secret = await cli(
      'status',
      'items',
      '--redis',
      'redis://:hunter2@127.0.0.1:1',
    );
    expect(secret.out).toMatch(
      /^Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1: /,
    );
  });
});
