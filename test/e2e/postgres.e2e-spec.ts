import {
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
} from '../support/postgres';
import { runFixture, startFixture } from '../support/fixture';

const ROWS = 50_000;

/** Real cluster processes of the compiled fixture app against a real PostgreSQL table. */
describe('cluster workers on PostgreSQL (e2e)', () => {
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });

  it.each([[2], [4]])(
    'handles every row exactly once with %i workers',
    async (workers) => {
      const table = await createPgItems(ROWS);
      tables.push(table);
      const result = await runFixture({
        DATABASE_URL,
        FIXTURE_TABLE: table,
        FIXTURE_WORKERS: workers,
        // Fixed: the adaptive size would grow once a range ended before the loader reached the end (on a slow
        // machine it may), and the count of ranges below assumes 1,000 ids each.
        FIXTURE_RANGE_SIZE: 1000,
      });

      expect(result.code).toBe(0);
      expect(result.summary).toMatchObject({
        status: 'completed',
        ids: ROWS,
        ranges: { completed: ROWS / 1000, retried: 0, dead: 0 },
      });
      expect(await pgCounts(table)).toEqual({
        total: ROWS,
        once: ROWS,
        missed: [],
        duplicated: [],
      });
      console.log(
        `PostgreSQL, ${workers} workers: ${ROWS} rows once, 0 lost, 0 duplicated, ${(result.summary!.durationMs / 1000).toFixed(2)} s`,
      );
    },
  );

  it('loses no row when a worker is SIGKILLed mid-range', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const run = startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: table,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_SLOW_IDS: 20_001,
    });
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
    const counts = await pgCounts(table);
    expect(counts.missed).toEqual([]);
    expect(counts.duplicated).toEqual(
      Array.from(
        { length: Number(last) - Number(first) + 1 },
        (_, i) => Number(first) + i,
      ),
    );
  });
});
