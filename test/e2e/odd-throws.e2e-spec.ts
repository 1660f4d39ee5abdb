import { randomBytes } from 'node:crypto';
import type { DeadLetter } from '../../lib';
import { startFixture } from '../support/fixture';
import {
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgQuery,
} from '../support/postgres';
import { REDIS_URL } from '../support/redis-server';

const ROWS = 3000;

/** The first id of each range that throws (ranges are 100 ids: 1-100, 101-200, …), and what it throws. */
const ODD: Record<number, [string, (message: string) => boolean]> = {
  101: ['null', (m) => m === 'null (thrown, not an Error)'],
  401: [
    'null-prototype',
    (m) => m === '[Object: null prototype] {} (thrown, not an Error)',
  ],
  701: ['symbol', (m) => m === 'Symbol(odd) (thrown, not an Error)'],
  1001: [
    'throwing-tostring',
    (m) => m === '{ toString: [Function: toString] } (thrown, not an Error)',
  ],
  1301: ['throwing-getters', (m) => m === 'Error'],
  1601: ['object-message', (m) => m === '{ code: 7 }'],
  1901: [
    'huge',
    (m) => m === `${'x'.repeat(7960)}… (1,992,040 more characters)`,
  ],
  2201: ['undefined', (m) => m === 'undefined (thrown, not an Error)'],
};

const env = (
  table: string,
  workers: number,
  odd: Record<number, [string, unknown]>,
) => ({
  DATABASE_URL,
  FIXTURE_TABLE: table,
  REDIS_URL,
  FIXTURE_PREFIX: `pw-odd-${randomBytes(4).toString('hex')}`,
  FIXTURE_WORKERS: workers,
  FIXTURE_CONCURRENCY: 4,
  FIXTURE_RANGE: 100,
  FIXTURE_MAX_ATTEMPTS: 2,
  // Long enough that a range left waiting for it would be seen (a timeout warning, a worker killed).
  FIXTURE_RANGE_TIMEOUT_MS: 20_000,
  FIXTURE_PRINT_DEAD: 1,
  FIXTURE_THROW: Object.entries(odd)
    .map(([id, [kind]]) => `${id}:${kind}`)
    .join(','),
});

/** Rows handled, by how often, outside the throwing ranges and inside them. */
async function handled(table: string, throwing: number[]) {
  const rows = await pgQuery<{ odd: boolean; processed: number; n: number }>(
    `SELECT (((id - 1) / 100) * 100 + 1) = ANY($1::bigint[]) AS odd, processed, COUNT(*)::int AS n
       FROM ${table} GROUP BY 1, 2 ORDER BY 1, 2`,
    [throwing],
  );
  return rows.map(
    (r) => `${r.odd ? 'throwing' : 'other'} x${r.processed}: ${r.n}`,
  );
}

const deadLetters = (output: string): DeadLetter[] =>
  JSON.parse(
    output
      .split('\n')
      .find((l) => l.startsWith('DEAD '))
      ?.slice(5) ?? '[]',
  ) as DeadLetter[];

describe('handlers that throw what is not an Error (e2e)', () => {
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });

  it('real workers: each strange throw fails only its own range; the rest of the batch counts once, no worker is killed', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const result = await startFixture(env(table, 2, ODD)).exited;
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS - 800,
      ranges: { completed: 22, dead: 8 },
      workers: { restarted: 0 },
    });
    // Every other row handled exactly once; the throwing ranges never wrote.
    expect(await handled(table, Object.keys(ODD).map(Number))).toEqual([
      'other x1: 2200',
      'throwing x0: 800',
    ]);
    // Nothing waited for rangeTimeoutMs, no message was dropped, no worker died.
    expect(result.output).not.toMatch(
      /timed out|malformed|killing|exited with/i,
    );
    const dead = deadLetters(result.output);
    expect(dead).toHaveLength(8);
    for (const letter of dead) {
      const [kind, readable] = ODD[Number(letter.range.ids[0])];
      expect([kind, readable(letter.error.message)]).toEqual([kind, true]);
      expect(letter.attempts).toBe(2);
    }
  });

  it('workers: 0 and a thrown Object.create(null): the primary lives, the range is dead-lettered with a readable message', async () => {
    const table = await createPgItems(ROWS);
    tables.push(table);
    const result = await startFixture(env(table, 0, { 401: ODD[401] })).exited;
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS - 100,
      ranges: { dead: 1 },
    });
    expect(await handled(table, [401])).toEqual([
      'other x1: 2900',
      'throwing x0: 100',
    ]);
    expect(deadLetters(result.output)).toMatchObject([
      {
        attempts: 2,
        error: {
          message: '[Object: null prototype] {} (thrown, not an Error)',
        },
      },
    ]);
  });
});
