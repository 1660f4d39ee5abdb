import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import Redis from 'ioredis';
import { RedisStore, type RunSummary } from '../../lib';
import { runCli } from '../support/cli';
import { type FixtureRun, startFixture } from '../support/fixture';
import {
  countProcessed as processed,
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
} from '../support/postgres';
import { OwnRedisCluster } from '../support/redis-cluster';
import { OwnRedisSentinel } from '../support/redis-sentinel';
import { OwnRedis, REDIS_URL } from '../support/redis-server';

const ROWS = 100_000;

/** Rows handled twice where no hand-out was a retry: duplicates with nothing lost to explain them. */
const countFirstAttemptDuplicates = async (table: string): Promise<number> => {
  const client = new Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    return Number(
      (
        await client.query(
          `SELECT COUNT(*) AS n FROM ${table} WHERE processed > 1 AND max_attempt < 2`,
        )
      ).rows[0].n,
    );
  } finally {
    await client.end();
  }
};

const waitUntil = async (check: () => Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
};

const hosts = (
  n: number,
  env: Record<string, string | number | undefined>,
): FixtureRun[] => Array.from({ length: n }, () => startFixture(env));

/** Several primaries (hosts) of the fixture app sharing one Redis and one PostgreSQL table. */
describe('many hosts on one Redis (e2e)', () => {
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });

  it('runs one job on 3 primaries x 2 workers: every row exactly once', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_HANDLER_MS: 20,
    };
    const started = Date.now();
    const results = await Promise.all(hosts(3, env).map((h) => h.exited));
    const seconds = (Date.now() - started) / 1000;

    for (const r of results) expect(r.code).toBe(0);
    const summaries = results.map((r) => r.summary as RunSummary);
    expect(new Set(summaries.map((s) => s.runId)).size).toBe(1);
    for (const s of summaries)
      expect(s).toMatchObject({
        status: 'completed',
        ids: ROWS,
        ranges: { completed: ROWS / 500, retried: 0 },
      });
    expect(summaries.reduce((n, s) => n + s.host.ids, 0)).toBe(ROWS);
    // No host takes more than it can use while its workers start: each one does a real share.
    for (const s of summaries)
      expect(s.host.ids).toBeGreaterThanOrEqual(ROWS / 10);
    const counts = await pgCounts(table);
    expect(counts).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    console.log(
      `3 hosts x 2 workers: ${ROWS} rows, ${counts.once} once, 0 lost, 0 duplicated, per host ${summaries.map((s) => s.host.ids).join('/')}, ${seconds.toFixed(1)} s`,
    );
  });

  it('re-handles the ranges of a whole host SIGKILLed at about 40%: no row lost', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 1000,
      FIXTURE_HANDLER_MS: 400,
      FIXTURE_LEASE_MS: 2000,
    };
    const [victim, ...survivors] = hosts(3, env);
    await waitUntil(async () => (await processed(table)) >= ROWS * 0.4);
    const children = execFileSync('pgrep', ['-P', String(victim.child.pid)])
      .toString()
      .trim()
      .split('\n')
      .map(Number);
    const killedAt = Date.now();
    for (const pid of [victim.child.pid as number, ...children])
      process.kill(pid, 'SIGKILL');
    const results = await Promise.all(survivors.map((h) => h.exited));
    await victim.exited;

    for (const r of results) expect(r.code).toBe(0);
    for (const r of results)
      expect(r.summary).toMatchObject({ status: 'completed', ids: ROWS });
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    // Only ranges the dead host held (2 workers + 2 prefetched, 1000 ids each) can have run twice.
    expect(counts.duplicated.length).toBeLessThanOrEqual(4 * 1000);
    const released = survivors.flatMap((h) =>
      h.chunks.filter((c) =>
        c.text.includes('was re-leased after its lease expired'),
      ),
    );
    expect(released.length).toBeGreaterThan(0);
    const recovery = (Math.max(...released.map((c) => c.at)) - killedAt) / 1000;
    console.log(
      `host SIGKILLed at 40%: ${ROWS} rows, 0 lost, ${counts.duplicated.length} duplicated, ${released.length} output chunks re-leasing, ranges re-handled ${recovery.toFixed(1)} s after the kill (lease 2 s)`,
    );
  });

  /** Two hosts on a redis-server of the test's own, once they handled 30% of the rows. */
  async function twoHostsOnOwnRedis(
    prefix: string,
    extra: Record<string, number> = {},
  ) {
    const redis = new OwnRedis();
    await redis.start();
    const table = await createPgItems(ROWS);
    tables.push(table);
    const runs = hosts(2, {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL: redis.url,
      FIXTURE_PREFIX: prefix,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 1000,
      FIXTURE_HANDLER_MS: 150,
      ...extra,
    });
    await waitUntil(async () => (await processed(table)) >= ROWS * 0.3);
    return { redis, table, runs };
  }

  it('runs one job on 2 primaries over a 3-master Redis Cluster: every row exactly once', async () => {
    const cluster = new OwnRedisCluster();
    await cluster.start();
    try {
      const table = await createPgItems(ROWS);
      tables.push(table);
      const started = Date.now();
      const runs = hosts(2, {
        DATABASE_URL,
        FIXTURE_TABLE: table,
        FIXTURE_REDIS_CLUSTER: cluster.nodes,
        FIXTURE_PREFIX: 'pw-cluster',
        FIXTURE_WORKERS: 2,
        FIXTURE_RANGE_SIZE: 1000,
      });
      const results = await Promise.all(runs.map((h) => h.exited));
      for (const r of results) expect(r.code).toBe(0);
      for (const r of results)
        expect(r.summary).toMatchObject({ status: 'completed', ids: ROWS });
      expect(new Set(results.map((r) => r.summary?.runId)).size).toBe(1);
      const counts = await pgCounts(table);
      expect(counts).toMatchObject({
        total: ROWS,
        once: ROWS,
        missed: [],
        duplicated: [],
      });
      // All of the job's keys live on one master (one hash tag, one slot).
      const perNode = cluster.keysPerNode();
      expect(perNode.filter((n) => n > 0)).toHaveLength(1);
      // Jobs on other slots (other masters) are all listed, as the CLI lists them.
      const client = new Redis.Cluster(
        cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      );
      const store = new RedisStore(client, 'pw-cluster');
      for (const job of ['alpha', 'beta', 'gamma', 'delta'])
        await store.job(job).start({ runId: `run-${job}` });
      expect(await store.jobs()).toEqual([
        'alpha',
        'beta',
        'delta',
        'gamma',
        'items',
      ]);
      expect(cluster.keysPerNode().filter((n) => n > 0).length).toBeGreaterThan(
        1,
      );
      await client.quit();
      // The CLI reads the job from the master that holds it, and lists jobs from every master.
      const nodes = [
        '--cluster',
        '--redis',
        cluster.ports.map((p) => `127.0.0.1:${p}`).join(','),
        '--prefix',
        'pw-cluster',
      ];
      expect((await runCli(['status', 'items', ...nodes])).out).toMatch(
        /^job items: completed .*\n100,000 ids done/,
      );
      expect((await runCli(['status', 'nope', ...nodes])).out).toContain(
        'Jobs there: alpha, beta, delta, gamma, items.',
      );
      console.log(
        `Redis Cluster (3 masters), 2 hosts x 2 workers: ${ROWS} rows, 0 lost, 0 duplicated, keys per master ${perNode.join('/')}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      cluster.stop();
    }
  });

  it('runs one job on 2 primaries through Redis Sentinel (a master and a replica): every row exactly once', async () => {
    const sentinel = new OwnRedisSentinel();
    await sentinel.start();
    try {
      const table = await createPgItems(ROWS);
      tables.push(table);
      const started = Date.now();
      const runs = hosts(2, {
        DATABASE_URL,
        FIXTURE_TABLE: table,
        FIXTURE_REDIS_SENTINEL: `127.0.0.1:${sentinel.sentinel}`,
        FIXTURE_REDIS_SENTINEL_NAME: sentinel.name,
        FIXTURE_PREFIX: 'pw-sentinel',
        FIXTURE_WORKERS: 2,
        FIXTURE_RANGE_SIZE: 1000,
      });
      const results = await Promise.all(runs.map((h) => h.exited));
      for (const r of results) expect(r.code).toBe(0);
      for (const r of results)
        expect(r.summary).toMatchObject({ status: 'completed', ids: ROWS });
      expect(await pgCounts(table)).toMatchObject({
        total: ROWS,
        once: ROWS,
        missed: [],
        duplicated: [],
      });
      // The hosts found the master through the sentinel; the replica follows it.
      const [onMaster] = sentinel.keys();
      expect(onMaster).toBeGreaterThan(0);
      // So does the CLI.
      const via = [
        '--sentinel',
        `127.0.0.1:${sentinel.sentinel}`,
        '--name',
        sentinel.name,
        '--prefix',
        'pw-sentinel',
      ];
      expect((await runCli(['status', 'items', ...via])).out).toMatch(
        /^job items: completed .*\n100,000 ids done/,
      );
      expect(
        (
          await runCli([
            'status',
            'items',
            '--sentinel',
            `127.0.0.1:${sentinel.sentinel}`,
          ])
        ).out,
      ).toMatch(/^--sentinel needs --name <master>/);
      console.log(
        `Redis Sentinel (master + replica), 2 hosts x 2 workers: ${ROWS} rows, 0 lost, 0 duplicated, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      sentinel.stop();
    }
  });

  it('loses no row when Sentinel fails the master over to its replica mid-run', async () => {
    const sentinel = new OwnRedisSentinel();
    await sentinel.start();
    try {
      const table = await createPgItems(ROWS);
      tables.push(table);
      const env = {
        DATABASE_URL,
        FIXTURE_TABLE: table,
        FIXTURE_REDIS_SENTINEL: `127.0.0.1:${sentinel.sentinel}`,
        FIXTURE_REDIS_SENTINEL_NAME: sentinel.name,
        FIXTURE_PREFIX: 'pw-failover',
        FIXTURE_WORKERS: 2,
        FIXTURE_RANGE_SIZE: 1000,
        FIXTURE_HANDLER_MS: 150,
        FIXTURE_LEASE_MS: 2000,
      };
      const runs = hosts(2, env);
      await waitUntil(async () => (await processed(table)) >= ROWS * 0.3);
      const before = sentinel.masterPort();
      sentinel.failover();
      await waitUntil(async () => sentinel.masterPort() !== before, 30_000);
      const results = await Promise.all(runs.map((h) => h.exited));
      // Each host either finished the run, or failed it saying the store's state went back: never completed with rows missing.
      for (const r of results) {
        if (r.code === 0)
          expect(r.summary).toMatchObject({
            status: 'completed',
            ids: expect.any(Number),
          });
        else
          expect(r.failed?.message).toMatch(
            /was lost from the store|went back to|issued fencing token \d+ again/,
          );
      }
      const completed = results.every((r) => r.code === 0);
      if (completed) expect((await pgCounts(table)).missed).toEqual([]);
      else
        expect((await startFixture(env).exited).summary).toMatchObject({
          status: 'completed',
        });
      const counts = await pgCounts(table);
      expect(counts.missed).toEqual([]);
      // Rows handled twice without a failed run are in ranges whose lease was lost (attempt 2 or later).
      if (completed) expect(await countFirstAttemptDuplicates(table)).toBe(0);
      console.log(
        `Sentinel failover at 30% (master ${before} -> ${sentinel.masterPort()}): ${completed ? 'the run completed' : 'the run failed saying so, the next run completed'}; ${ROWS} rows, 0 lost, ${counts.duplicated.length} duplicated`,
      );
    } finally {
      sentinel.stop();
    }
  });

  it('gives its leases up at leaseMs and loses nothing while Redis hangs without failing', async () => {
    const { redis, table, runs } = await twoHostsOnOwnRedis('pw-hang', {
      FIXTURE_LEASE_MS: 1000,
    });
    // Every command now hangs: no error reaches the hosts, renewals just never answer.
    redis.freeze();
    await new Promise((r) => setTimeout(r, 2500));
    redis.thaw();
    const results = await Promise.all(runs.map((h) => h.exited));
    redis.stop();

    for (const r of results) expect(r.code).toBe(0);
    for (const r of results)
      expect(r.summary).toMatchObject({ status: 'completed', ids: ROWS });
    // The hosts gave their leases up at leaseMs while Redis hung (running handlers had their signals aborted).
    const gaveUp = runs.map(
      (h) =>
        (h.output().match(/no longer this host's \(lease may be lost/g) ?? [])
          .length,
    );
    expect(gaveUp.every((n) => n > 0)).toBe(true);
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    // Rows handled twice are in ranges handed out again after their lease expired (attempt 2).
    const firstAttempts = await countFirstAttemptDuplicates(table);
    expect(firstAttempts).toBe(0);
    console.log(
      `Redis hung 2.5 s (leaseMs 1000): ${ROWS} rows, 0 lost, ${counts.duplicated.length} duplicated (all at attempt 2 or later), leases given up on each host at leaseMs`,
    );
  });

  it('fails the run, never completes it, when Redis loses its state mid-run; the next run loses nothing', async () => {
    const { redis, table, runs } = await twoHostsOnOwnRedis('pw-flush');
    execFileSync('redis-cli', ['-p', String(redis.port), 'flushall']);
    const results = await Promise.all(runs.map((h) => h.exited));
    for (const r of results) {
      expect(r.code).toBe(1);
      expect(r.failed?.message).toMatch(
        /the coordination state of run [0-9a-f-]+ of job "items" was lost from the store/,
      );
    }
    const before = await pgCounts(table);
    // The next run starts over (the cursor is gone too): rows are handled again, none is skipped.
    const next = await startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL: redis.url,
      FIXTURE_PREFIX: 'pw-flush',
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 1000,
    }).exited;
    redis.stop();
    expect(next.summary).toMatchObject({ status: 'completed', ids: ROWS });
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    console.log(
      `Redis FLUSHALL mid-run: both hosts failed with "state lost" after ${ROWS - before.missed.length} of ${ROWS} rows; the next run: ${ROWS} rows, 0 lost, ${counts.duplicated.length} handled twice`,
    );
  });

  it('fails the run on every host, never completes it, when Redis loses one key of its state; the next run with from loses nothing', async () => {
    const { redis, table, runs } = await twoHostsOnOwnRedis('pw-part');
    // Only the leases of the ranges in flight go, as when Redis evicts that one key.
    execFileSync('redis-cli', [
      '-p',
      String(redis.port),
      'del',
      '{pw-part:items}:leases',
    ]);
    const results = await Promise.all(runs.map((h) => h.exited));
    for (const r of results) {
      expect(r.code).toBe(1);
      expect(r.failed?.message).toMatch(
        /part of the coordination state of job "items" \(run [0-9a-f-]+\) was lost from the store \(leases/,
      );
    }
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL: redis.url,
      FIXTURE_PREFIX: 'pw-part',
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 1000,
    };
    // Where to go on from is the user's call: run() without from is refused.
    const refused = await startFixture(env).exited;
    expect(refused.refused?.message).toMatch(
      /part of the coordination state of job "items".* run\('items', \{ from \}\)/,
    );
    const before = await pgCounts(table);
    const next = await startFixture({ ...env, FIXTURE_FROM_START: 1 }).exited;
    redis.stop();
    expect(next.summary).toMatchObject({ status: 'completed', ids: ROWS });
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    console.log(
      `Redis lost the leases key mid-run: both hosts failed with "state lost" after ${ROWS - before.missed.length} of ${ROWS} rows; run() without from refused; the next run with from: null: ${ROWS} rows, 0 lost`,
    );
  });

  it('finishes with nothing lost when Redis restarts mid-run', async () => {
    const { redis, table, runs } = await twoHostsOnOwnRedis('pw-restart');
    redis.stop();
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    await redis.start();
    const outage = (Date.now() - downAt) / 1000;
    const results = await Promise.all(runs.map((h) => h.exited));
    redis.stop();

    for (const r of results) expect(r.code).toBe(0);
    for (const r of results)
      expect(r.summary).toMatchObject({ status: 'completed', ids: ROWS });
    // The run outlived the restart (appendonly kept it): both hosts finished the same run.
    expect(new Set(results.map((r) => r.summary?.runId)).size).toBe(1);
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    console.log(
      `Redis restarted at 30% (${outage.toFixed(1)} s down): ${ROWS} rows, 0 lost, ${counts.duplicated.length} duplicated`,
    );
  });

  it('resumes a run whose only host crashed: the next run() re-handles only unfinished ranges', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 1000,
      FIXTURE_HANDLER_MS: 200,
      FIXTURE_LEASE_MS: 1000,
    };
    const first = startFixture(env);
    await waitUntil(async () => (await processed(table)) >= ROWS * 0.4);
    const children = execFileSync('pgrep', ['-P', String(first.child.pid)])
      .toString()
      .trim()
      .split('\n')
      .map(Number);
    for (const pid of [first.child.pid as number, ...children])
      process.kill(pid, 'SIGKILL');
    await first.exited;
    const before = await processed(table);

    const second = await startFixture(env).exited;
    expect(second.code).toBe(0);
    expect(second.summary?.status).toBe('completed');
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    // The crashed host held at most 4 ranges (2 in workers, 2 prefetched): only those can run twice.
    expect(counts.duplicated.length).toBeLessThanOrEqual(4000);
    expect(second.summary!.host.ids).toBeLessThanOrEqual(ROWS - before + 4000);
    console.log(
      `host crashed at ${Math.round((before / ROWS) * 100)}%, resumed by the next run(): ${ROWS} rows, 0 lost, ${counts.duplicated.length} duplicated, resumed run handled ${second.summary!.host.ids} ids`,
    );
  });

  it('stops a host gracefully on SIGTERM; the next run() resumes with nothing lost and nothing repeated', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 1000,
      FIXTURE_HANDLER_MS: 200,
    };
    const first = startFixture(env);
    await waitUntil(async () => (await processed(table)) >= ROWS * 0.3);
    first.child.kill('SIGTERM');
    const stopped = await first.exited;
    expect(stopped.code).toBe(0);
    expect(stopped.summary).toMatchObject({ status: 'stopped' });
    expect(stopped.summary!.ids).toBeLessThan(ROWS);
    expect(stopped.output).toContain(
      `EVENT BeforeStop {"job":"items","status":"stopped","ids":${stopped.summary!.ids}}`,
    );

    const second = await startFixture(env).exited;
    expect(second.code).toBe(0);
    expect(second.summary).toMatchObject({
      status: 'completed',
      runId: stopped.summary!.runId,
      ids: ROWS,
    });
    expect(await pgCounts(table)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
  });

  it('exits at once on a second SIGTERM, still releasing its leases for the next run', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 1000,
      FIXTURE_HANDLER_MS: 3000,
      FIXTURE_LEASE_MS: 60_000,
    };
    const first = startFixture(env);
    await waitUntil(async () => (await processed(table)) >= 2000);
    first.child.kill('SIGTERM');
    await first.waitFor(/stopping gracefully/);
    first.child.kill('SIGTERM');
    const forced = await first.exited;
    expect(forced.code).toBe(143);
    expect(forced.output).toContain('SIGTERM again: exiting now.');

    // With a 60 s lease, only released leases can be handed out again this soon.
    const second = await startFixture({ ...env, FIXTURE_HANDLER_MS: 0 }).exited;
    expect(second.code).toBe(0);
    expect(second.summary?.status).toBe('completed');
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
  });
});
