import { randomBytes } from 'node:crypto';
import { runFixture } from '../support/fixture';
import { pgCounts } from '../support/postgres';
import { REDIS_URL } from '../support/redis-server';
import { POSTGRES } from '../support/sql-backends';

const ROWS = 2000;
const RANGE = 100;

/** The STUCK_RANGE lines: each attempt of a range the handler got stuck on. */
const stuckLines = (output: string) =>
  [
    ...output.matchAll(
      /^STUCK_RANGE pid=\d+ attempt=(\d+) first=(\d+) last=(\d+)$/gm,
    ),
  ].map((m) => ({
    attempt: Number(m[1]),
    first: Number(m[2]),
    last: Number(m[3]),
  }));

/**
 * Real cluster workers over a PostgreSQL table, coordinating through Redis: the range with id 1050 never
 * finishes while it has more than 30 ids (its handler waits for its signal, rangeTimeoutMs, then gives up).
 */
describe('a range that times out (e2e, PostgreSQL)', () => {
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await POSTGRES.drop(t);
  });

  const env = async () => {
    const table = await POSTGRES.createItems(ROWS);
    tables.push(table);
    return {
      ...POSTGRES.env,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-split-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: RANGE,
      FIXTURE_RANGE_TIMEOUT_MS: 1000,
      FIXTURE_STUCK_IDS: 1050,
      FIXTURE_STUCK_ABOVE: 50,
    };
  };

  it('A range that times out is split for its retry; the halves complete', async () => {
    const e = await env();
    const result = await runFixture(e);

    expect(result.code).toBe(0);
    // 1001..1100 timed out on its first hand-out; its halves 1001..1050 and 1051..1100 completed.
    expect(stuckLines(result.output)).toEqual([
      { attempt: 1, first: 1001, last: 1100 },
    ]);
    expect(result.output).toMatch(
      /range of 100 ids 1001\.\.1100 \(token \d+, attempt 1\) timed out; split into 2 ranges of 50 and 50 ids for its retry in \d+ ms: the handler ran past rangeTimeoutMs \(1000 ms\)/,
    );
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
      ranges: { completed: ROWS / RANGE - 1 + 2, retried: 1, dead: 0 },
    });
    expect(await pgCounts(e.FIXTURE_TABLE)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
  });

  it('is retried whole, never split, when the handler fences its ranges', async () => {
    const e = await env();
    const fence = await POSTGRES.createFence();
    tables.push(fence);
    // Stuck inside its fenced transaction on attempts 1 and 2; attempt 3 (maxAttempts) completes it.
    const result = await runFixture({
      ...e,
      FIXTURE_FENCE: 1,
      FIXTURE_FENCE_TABLE: fence,
      FIXTURE_STUCK_ATTEMPTS: 2,
    });

    expect(result.code).toBe(0);
    expect(stuckLines(result.output)).toEqual([
      { attempt: 1, first: 1001, last: 1100 },
      { attempt: 2, first: 1001, last: 1100 },
    ]);
    expect(result.output).not.toMatch(/split into/);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
      ranges: { completed: ROWS / RANGE, retried: 2, dead: 0 },
    });
    expect(await pgCounts(e.FIXTURE_TABLE)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    const [row] = await POSTGRES.query<{ n: string }>(
      `SELECT COUNT(*) AS n FROM ${fence}`,
    );
    expect(Number(row.n)).toBe(ROWS / RANGE);
  });
});
