import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { RunRecord, StoredRange } from '../../lib';
import { RedisStore } from '../../lib/store/redis.store';
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

    // One dead letter by its run and first id, as dead lists them; a second time it is gone, and nothing else is retried.
    const [letter] = (
      JSON.parse((await cli('dead', 'items', '--json', ...opts)).out) as {
        deadLetters: { runId: string; range: { ids: number[] } }[];
      }
    ).deadLetters;
    const key = ['--run', letter.runId, '--first', String(letter.range.ids[0])];
    const retried = await cli('retry-dead', 'items', ...key, ...opts);
    expect(retried).toEqual({
      code: 0,
      out: `The dead letter of "items" from run ${letter.runId} starting at id ${letter.range.ids[0]} will be handed out again by its next run.\n`,
    });
    const twice = await cli('retry-dead', 'items', ...key, ...opts);
    expect(twice.code).not.toBe(0);
    expect(twice.out).toContain(
      `No dead letter of "items" from run ${letter.runId} starts at id ${letter.range.ids[0]} (retried or reset already?); nothing was retried.`,
    );
    expect((await cli('retry-dead', 'items', ...opts)).out).toBe(
      '0 dead-lettered ranges of "items" will be handed out again by its next run.\n',
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
    // No Redis named and no SQLite file in the working directory (the test's temporary one).
    const nowhere = await runCli(
      ['status', 'items'],
      { PARALLEL_WORKER_REDIS_URL: '', REDIS_URL: '' },
      mkdtempSync(join(tmpdir(), 'pw-cli-')),
    );
    expect(nowhere).toMatchObject({
      code: 2,
      out: expect.stringMatching(
        /^No store found: no --store or --redis given, \$PARALLEL_WORKER_REDIS_URL and \$REDIS_URL are not set/,
      ),
    });
    expect(nowhere.out).toContain('--redis <url>');
    const secret = await cli(
      'status',
      'items',
      '--redis',
      'redis://:hunter2@127.0.0.1:1',
    );
    expect(secret.out).toMatch(
      /^Cannot reach Redis at redis:\/\/\*\*\*@127\.0\.0\.1:1: /,
    );
  });
});

/** History and dead letters, seeded straight into the store as the module leaves them. */
describe('nestjs-parallel-worker CLI: history and dead (e2e)', () => {
  const prefix = `pw-cli-${randomBytes(4).toString('hex')}`;
  const opts = ['--redis', REDIS_URL, '--prefix', prefix];
  let redis: Redis;
  let store: RedisStore;
  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    store = new RedisStore(redis, prefix);
    // A job's store keys exist once it ran: the CLI refuses jobs it cannot find.
    await store.job('items').start({ runId: 'run-dead' });
    await store.job('quiet').start({ runId: 'run-quiet' });
  });
  afterAll(async () => {
    const keys = await redis.keys(`{${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  const T = Date.UTC(2025, 0, 2, 3, 4, 5);
  const record = (
    runId: string,
    status: RunRecord['status'],
    extra: Partial<RunRecord> & { ids?: number } = {},
  ): RunRecord => {
    const { ids = 1000, ...rest } = extra;
    return {
      runId,
      job: 'items',
      params: null,
      status,
      startedBy: null,
      host: null,
      startedAt: T,
      endedAt: T + 1000,
      summary: {
        job: 'items',
        runId,
        status: status === 'cancelled' ? 'stopped' : status,
        ids,
        ranges: { completed: 4, retried: 1, dead: 0 },
        workers: { started: 2, restarted: 0 },
        durationMs: 1000,
        heldMs: 0,
        host: { ids, ranges: 4 },
      },
      deadLetters: 0,
      ...rest,
    };
  };

  it('lists the ended runs newest first, as a table or as JSON', async () => {
    await store.job('items').recordRun({
      record: record('run-1', 'completed', {
        startedBy: 'cron',
        host: 'web-1:101:aaaaaa',
        endedAt: T + 12_300,
        ids: 12_345,
      }),
      keep: 100,
    });
    await store.job('items').recordRun({
      record: record('run-2', 'cancelled', {
        startedBy: 'alice',
        host: 'web-2:202:bbbbbb',
        startedAt: T + 60_000,
        endedAt: T + 60_000 + 242_000,
        params: { tenant: 'acme', since: '2024-01-01', note: 'x'.repeat(80) },
      }),
      keep: 100,
    });
    await store.job('items').recordRun({
      record: record('run-3', 'failed', {
        startedAt: T + 3_600_000,
        endedAt: T + 3_600_000 + 500,
        params: { dryRun: true },
        error: 'the handler threw: connection refused',
        deadLetters: 3,
      }),
      keep: 100,
    });

    const shown = await cli('history', 'items', ...opts);
    expect(shown.code).toBe(0);
    const lines = shown.out.trimEnd().split('\n');
    expect(lines[0]).toBe('job items: 3 ended runs, newest first');
    expect(lines[1]).toMatch(
      /^RUN +STATUS +STARTED \(UTC\) +DURATION +IDS +RANGES done\/retried\/dead +STARTED BY +HOST +PARAMS$/,
    );
    // Newest first; a failed run's error on the line below it.
    expect(lines.slice(2)).toEqual([
      expect.stringMatching(
        /^run-3 +failed +2025-01-02T04:04:05Z +500 ms +1,000 +4\/1\/0 +- +- +\{"dryRun":true\}$/,
      ),
      '    error: the handler threw: connection refused',
      expect.stringMatching(
        /^run-2 +cancelled +2025-01-02T03:05:05Z +4 min 2 s +1,000 +4\/1\/0 +alice +web-2:202:bbbbbb +\{"tenant":"acme","since":"2024-01-01","note":"x+…$/,
      ),
      expect.stringMatching(
        /^run-1 +completed +2025-01-02T03:04:05Z +12\.3 s +12,345 +4\/1\/0 +cron +web-1:101:aaaaaa +-$/,
      ),
    ]);
    // Params are cut at 60 characters.
    expect(lines[4].slice(lines[4].indexOf('{"tenant"'))).toHaveLength(60);
    // Columns line up.
    const at = (line: string) => line.indexOf('20');
    expect(new Set([lines[2], lines[4], lines[5]].map(at)).size).toBe(1);

    const limited = await cli('history', 'items', '--limit', '2', ...opts);
    expect(limited.out).toMatch(
      /^job items: the newest 2 ended runs \(--limit for more\), newest first\n/,
    );
    expect(limited.out).toContain('run-2');
    expect(limited.out).not.toContain('run-1');

    // --json: the store's records, as they are, on one line.
    const json = await cli('history', 'items', '--json', ...opts);
    expect(json.code).toBe(0);
    expect(json.out).toBe(
      `${JSON.stringify(await store.job('items').history({ limit: 20 }))}\n`,
    );
    expect(
      (JSON.parse(json.out) as RunRecord[]).map((r) => [r.runId, r.status]),
    ).toEqual([
      ['run-3', 'failed'],
      ['run-2', 'cancelled'],
      ['run-1', 'completed'],
    ]);
    expect(JSON.parse(json.out)[0]).toMatchObject({
      error: 'the handler threw: connection refused',
      params: { dryRun: true },
    });

    const none = await cli('history', 'quiet', ...opts);
    expect(none.code).toBe(0);
    expect(none.out).toMatch(/^No ended runs recorded for job "quiet" \(/);
    expect(await cli('history', 'quiet', '--json', ...opts)).toEqual({
      code: 0,
      out: '[]\n',
    });
  });

  it('pages through the dead letters, oldest first', async () => {
    const owner = 'cli-test:1:abcdef';
    const lease = async (ids: number[]) => {
      const claim = await store.job('items').claim({ owner, leaseMs: 10_000 });
      if (claim.type !== 'load')
        throw new Error(`expected load, got ${claim.type}`);
      const range: StoredRange = {
        ids,
        lastId: ids[ids.length - 1],
        prev: claim.cursor,
      };
      const result = await store.job('items').commit({
        owner,
        expected: claim.cursor,
        ranges: [range],
        leaseMs: 10_000,
      });
      if (result.type !== 'leased')
        throw new Error(`expected leased, got ${result.type}`);
      return result.leases[0];
    };
    const failures: [number[], string][] = [
      [
        [1, 2, 3, 4, 5, 6, 7, 8],
        'row 3 is broken\n    at handler (items.job.ts:12)',
      ],
      [[9], 'timeout after 30000 ms'],
      [[10, 11], 'duplicate key'],
    ];
    for (const [ids, message] of failures) {
      const l = await lease(ids);
      expect(
        await store.job('items').fail({
          owner,
          token: l.token,
          error: { message, stack: `Error: ${message}` },
          dead: true,
          retryInMs: 0,
        }),
      ).toBe('dead');
    }

    const all = await cli('dead', 'items', ...opts);
    expect(all.code).toBe(0);
    const lines = all.out.trimEnd().split('\n');
    expect(lines[0]).toBe(
      'job items: 3 dead letters (oldest first), showing 1–3',
    );
    expect(lines[1]).toMatch(
      /^RUN +ATTEMPTS +IDS +FIRST IDS +AT \(UTC\) +ERROR$/,
    );
    const when = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
    expect(lines.slice(2, 5)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^run-dead +1 +8 +1, 2, 3, 4, 5, … +${when} +row 3 is broken$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(`^run-dead +1 +1 +9 +${when} +timeout after 30000 ms$`),
      ),
      expect.stringMatching(
        new RegExp(`^run-dead +1 +2 +10, 11 +${when} +duplicate key$`),
      ),
    ]);

    const page = await cli(
      'dead',
      'items',
      '--offset',
      '1',
      '--limit',
      '1',
      ...opts,
    );
    expect(page.out).toMatch(
      /^job items: 3 dead letters \(oldest first\), showing 2–2; --offset 2 for the next\n/,
    );
    expect(page.out).toContain('timeout after 30000 ms');
    expect(page.out).not.toContain('duplicate key');

    const json = await cli('dead', 'items', '--offset', '1', '--json', ...opts);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual({
      total: 3,
      offset: 1,
      deadLetters: await store
        .job('items')
        .deadLetters({ offset: 1, limit: 50 }),
    });
    expect(
      JSON.parse(json.out).deadLetters.map(
        (d: { range: { ids: number[] } }) => d.range.ids,
      ),
    ).toEqual([[9], [10, 11]]);

    expect((await cli('dead', 'quiet', ...opts)).out).toBe(
      'No dead letters for job "quiet".\n',
    );
  });

  it('refuses a --limit or --offset that is not a whole number', async () => {
    const bad = await cli('history', 'items', '--limit', 'x', ...opts);
    expect(bad).toEqual({
      code: 2,
      out: '--limit takes a whole number ≥ 1, got "x".\n',
    });
    expect((await cli('dead', 'items', '--limit', '0', ...opts)).out).toBe(
      '--limit takes a whole number ≥ 1, got "0".\n',
    );
    const negative = await cli('dead', 'items', '--offset=-1', ...opts);
    expect(negative).toMatchObject({
      code: 2,
      out: expect.stringContaining(
        '--offset takes a whole number ≥ 0, got "-1".',
      ),
    });
    expect((await cli('status', 'items', '--limit', '5', ...opts)).out).toBe(
      '--limit is for history and dead, not status.\n',
    );
  });
});

/** A run that completed with dead letters, left in the store as the module leaves it. */
describe('nestjs-parallel-worker CLI: status of a run with dead letters (e2e)', () => {
  const prefix = `pw-cli-${randomBytes(4).toString('hex')}`;
  const opts = ['--redis', REDIS_URL, '--prefix', prefix];
  let redis: Redis;
  afterAll(async () => {
    const keys = await redis.keys(`{${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('says completed with its dead letters, not a plain completed', async () => {
    redis = new Redis(REDIS_URL);
    const store = new RedisStore(redis, prefix);
    const owner = 'cli-test:1:abcdef';
    await store.job('items').start({ runId: 'run-with-dead' });
    const claim = await store.job('items').claim({ owner, leaseMs: 10_000 });
    const ranges: StoredRange[] = [
      { ids: [1, 2], lastId: 2, prev: null },
      { ids: [3, 4], lastId: 4, prev: 2 },
      { ids: [5], lastId: 5, prev: 4 },
    ];
    const committed = await store.job('items').commit({
      owner,
      expected: claim.type === 'load' ? claim.cursor : null,
      ranges,
      leaseMs: 10_000,
    });
    if (committed.type !== 'leased')
      throw new Error(`expected leased, got ${committed.type}`);
    const [first, second, third] = committed.leases;
    await store.job('items').complete({ owner, tokens: [first.token] });
    for (const lease of [second, third])
      await store.job('items').fail({
        owner,
        token: lease.token,
        error: { message: 'row is broken' },
        dead: true,
        retryInMs: 0,
      });
    await store
      .job('items')
      .endRun({ runId: 'run-with-dead', state: 'completed' });

    const shown = await cli('status', 'items', ...opts);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(
      /^job items: completed with 2 dead letters \(run run-with-dead\)\n/,
    );
    expect(shown.out).toContain('ranges: 1 done, 0 leased, 0 retrying, 2 dead');
    // Scripts read the same figures: the state stays the store's, with the dead letters beside it.
    expect(
      JSON.parse((await cli('status', 'items', '--json', ...opts)).out),
    ).toMatchObject({ state: 'completed', ranges: { done: 1, dead: 2 } });
  });
});
