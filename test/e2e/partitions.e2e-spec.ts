import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli';
import { runFixture, startFixture } from '../support/fixture';
import {
  addPgItems,
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
  pgQuery,
} from '../support/postgres';
import { REDIS_URL } from '../support/redis-server';

const ROWS = 200_000;

/** A job with @RangePartitions: real cluster processes, a real PostgreSQL table, every row checked. */
describe('partitioned loading on PostgreSQL (e2e)', () => {
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });
  const table = async (rows = ROWS) => {
    const t = await createPgItems(rows);
    tables.push(t);
    return t;
  };
  const env = (t: string) => ({
    DATABASE_URL,
    FIXTURE_TABLE: t,
    FIXTURE_WORKERS: 2,
    FIXTURE_PARTITIONS: 8,
    FIXTURE_RANGE_SIZE: 500,
  });

  it('loads 8 partitions at once with 2 workers: every row exactly once', async () => {
    const t = await table();
    const result = await runFixture(env(t));
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
      ranges: { retried: 0, dead: 0 },
    });
    expect(await pgCounts(t)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    console.log(
      `8 partitions, 2 workers: ${ROWS} rows once, 0 lost, 0 duplicated, ${(result.summary!.durationMs / 1000).toFixed(2)} s`,
    );
  });

  it('loses no row when a worker is SIGKILLed mid-range', async () => {
    const t = await table();
    // The first range of partition 5 of 8: handed out near the start, so the run still needs the replacement.
    const run = startFixture({ ...env(t), FIXTURE_SLOW_IDS: 100_001 });
    const [, pid, first, last] = await run.waitFor(
      /SLOW_RANGE pid=(\d+) first=(\d+) last=(\d+)/,
    );
    process.kill(Number(pid), 'SIGKILL');
    const result = await run.exited;
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
      workers: { restarted: 1 },
    });
    const counts = await pgCounts(t);
    expect(counts.missed).toEqual([]);
    // The killed worker had written its range: that range, and only it, twice.
    expect(counts.duplicated).toEqual(
      Array.from(
        { length: Number(last) - Number(first) + 1 },
        (_, i) => Number(first) + i,
      ),
    );
  });

  it('shares the partitions between 3 hosts on Redis: every row once, and each host loads', async () => {
    const t = await table();
    const prefix = `pw-parts-${randomBytes(4).toString('hex')}`;
    // Handlers of 10 ms pace the loading (it stays within prefetch), so a host that boots a little later still finds work.
    const hosts = [0, 1, 2].map(() =>
      startFixture({
        ...env(t),
        REDIS_URL,
        FIXTURE_PREFIX: prefix,
        FIXTURE_HANDLER_MS: 10,
      }),
    );
    const results = await Promise.all(hosts.map((h) => h.exited));
    for (const r of results) {
      expect(r.code).toBe(0);
      expect(r.summary).toMatchObject({ status: 'completed', ids: ROWS });
    }
    expect(await pgCounts(t)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    const shares = results.map((r) => r.summary!.host.ids);
    expect(shares.reduce((a, b) => a + b, 0)).toBe(ROWS);
    // A host that joins while others hold every partition takes its share over from them.
    for (const share of shares) expect(share).toBeGreaterThan(0);
    // The CLI shows each partition's bounds and cursor.
    const opts = ['--redis', REDIS_URL, '--prefix', prefix];
    const status = await runCli(['status', 'items', ...opts]);
    expect(status.code).toBe(0);
    expect(status.out).toContain('partitions: 8 (8 loaded to the end)');
    expect(status.out).toContain(
      '  1. (null, 25000] cursor 25000, 25,000 ids handed out, done',
    );
    expect(status.out).toContain(
      '  8. (175000, null] cursor 200000, 25,000 ids handed out, done',
    );
    const json = JSON.parse(
      (await runCli(['status', 'items', '--json', ...opts])).out,
    ) as { partitions: { cursor: number; exhausted: boolean }[] };
    expect(json.partitions.map((p) => p.cursor)).toEqual(
      Array.from({ length: 8 }, (_, i) => (i + 1) * 25_000),
    );
    console.log(
      `8 partitions, 3 hosts on Redis: ${ROWS} rows once, 0 lost, 0 duplicated; per host ${shares.join(' / ')}`,
    );
  });

  it('fails the run when the loader returns an id past its partition, naming the partition and the id', async () => {
    const t = await table(20_000);
    const result = await runFixture({
      ...env(t),
      FIXTURE_PARTITIONS: 4,
      FIXTURE_BAD: 'outside',
    });
    expect(result.code).toBe(1);
    expect(result.failed?.message).toMatch(
      /^Job "items" failed \(run [0-9a-f-]+\): Job "items": the range loader returned 5001 while loading partition 1 of 4, \(null, 5000\]; it is past the partition's end/,
    );
    // Partition 1 handed out nothing past its end.
    const counts = await pgCounts(t);
    expect(counts.duplicated).toEqual([]);
  });

  it('a job that just gained @RangePartitions, with a CLI reset landing while they are planned: every row handled, then and in the next run', async () => {
    const t = await table(10_000);
    const prefix = `pw-parts-${randomBytes(4).toString('hex')}`;
    const redis = { REDIS_URL, FIXTURE_PREFIX: prefix };
    const plain = { ...env(t), ...redis, FIXTURE_PARTITIONS: undefined };
    // Before it had partitions: the job ran to its end, its cursor is at the last row.
    expect((await runFixture(plain)).summary).toMatchObject({ ids: 10_000 });
    const gate = join(
      tmpdir(),
      `pw-plan-gate-${randomBytes(4).toString('hex')}`,
    );
    const run = startFixture({ ...env(t), ...redis, FIXTURE_PLAN_GATE: gate });
    await run.waitFor(/PLANNING pid=\d+/);
    const reset = await runCli([
      'reset',
      'items',
      '--redis',
      REDIS_URL,
      '--prefix',
      prefix,
    ]);
    expect(reset.out).toBe(
      '"items" reset: its next run starts from the first row.\n',
    );
    writeFileSync(gate, '');
    const result = await run.exited;
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({ status: 'completed', ids: 10_000 });
    // Every row twice: once before the reset, once after it.
    const times = () =>
      pgQuery<{ processed: number; n: number }>(
        `SELECT processed, COUNT(*)::int AS n FROM ${t} GROUP BY processed ORDER BY processed`,
      );
    expect(await times()).toEqual([{ processed: 2, n: 10_000 }]);
    // The plan stored is the whole table's: the next run handles the new rows, and only those.
    await addPgItems(t, 1000);
    const next = await runFixture({ ...env(t), ...redis });
    expect(next.summary).toMatchObject({ status: 'completed', ids: 1000 });
    expect(await times()).toEqual([
      { processed: 1, n: 1000 },
      { processed: 2, n: 10_000 },
    ]);
  });
});
