import { type FixtureRun, startFixture } from '../support/fixture';
import {
  countProcessed,
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
  pgQuery,
} from '../support/postgres';
import { OwnRedis } from '../support/redis-server';

const ROWS = 10_000;

const waitUntil = async (check: () => Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
};

/**
 * A range counts as done only when its handler returned while its host held
 * the lease and had not aborted it. Real cluster workers, a redis-server of
 * the test's own frozen with SIGSTOP, and a handler that walks its rows one
 * by one and returns as soon as its signal aborts: every row it handled is
 * counted in PostgreSQL, so a range counted done with rows left is a row
 * never handled.
 */
describe('done means done (e2e)', () => {
  const tables: string[] = [];
  let hosts: FixtureRun[] = [];
  let redis: OwnRedis | undefined;
  afterEach(() => {
    for (const h of hosts) if (h.child.exitCode === null) h.child.kill();
    redis?.thaw();
    if (redis) void redis.ping().then((up) => up && redis?.stop());
  });
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });

  it('hands out again, at attempt + 1, every range whose handler returned early on its aborted signal while Redis was frozen', async () => {
    redis = new OwnRedis();
    await redis.start();
    const table = await createPgItems(ROWS);
    tables.push(table);
    const env = {
      DATABASE_URL,
      FIXTURE_TABLE: table,
      REDIS_URL: redis.url,
      FIXTURE_PREFIX: 'pw-obey',
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 200,
      FIXTURE_LEASE_MS: 1000,
      FIXTURE_OBEY_SIGNAL: 1,
      // 10 rows at a time, 60 ms apart: a range takes about 1.2 s, so the freeze finds handlers mid-range.
      FIXTURE_OBEY_CHUNK: 10,
      FIXTURE_OBEY_PAUSE_MS: 60,
    };
    hosts = [startFixture(env), startFixture(env)];
    await waitUntil(async () => (await countProcessed(table)) >= ROWS * 0.3);
    // Every command hangs: renewals never answer, each host gives its leases up at leaseMs and aborts its handlers.
    redis.freeze();
    await new Promise((r) => setTimeout(r, 2500));
    redis.thaw();
    const results = await Promise.all(hosts.map((h) => h.exited));
    redis.stop();

    for (const r of results) expect(r.code).toBe(0);
    for (const r of results)
      expect(r.summary).toMatchObject({ status: 'completed', ids: ROWS });
    const returnedEarly = hosts.flatMap(
      (h) => h.output().match(/^RETURNED_EARLY .*$/gm) ?? [],
    );
    // The freeze did abort handlers mid-range, and they returned.
    expect(returnedEarly.length).toBeGreaterThan(0);
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    // A row handled twice is in a range handed out again (attempt 2 or later).
    const firstAttemptDuplicates = await pgQuery(
      `SELECT id FROM ${table} WHERE processed > 1 AND max_attempt < 2`,
    );
    expect(firstAttemptDuplicates).toEqual([]);
    console.log(
      `Redis frozen 2.5 s (leaseMs 1000), handlers returning on their signal: ${ROWS} rows, 0 lost, ${returnedEarly.length} ranges returned early, ${counts.duplicated.length} rows handled twice (all at attempt 2 or later)`,
    );
  }, 180_000);
});
