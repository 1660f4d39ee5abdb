import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFixture } from '../support/fixture';
import { createSqliteItems } from '../support/sqlite';

const ROWS = 5_000;
const RANGE = 250;

/**
 * Each row's handlings and the fenced writes the README advises (store
 * ctx.token with the write, refuse a token not above the stored one) that
 * were accepted: equal when no write was refused.
 */
function writes(file: string): { handled: number; accepted: number }[] {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare(
        'SELECT processed AS handled, COALESCE(writes, 0) AS accepted FROM items LEFT JOIN item_tokens USING (id) ORDER BY id',
      )
      .all() as { handled: number; accepted: number }[];
  } finally {
    db.close();
  }
}

const refusedWrites = (file: string) =>
  writes(file).filter((r) => r.accepted !== r.handled).length;

/** Two processes in a row over one job: the second's fencing tokens are above the first's, whatever the store. */
describe('a second process (e2e)', () => {
  it('memory store: every write of the second run is accepted by a handler that refuses older tokens', async () => {
    const db = createSqliteItems(ROWS);
    const env = {
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: RANGE,
      FIXTURE_FENCED: 1,
    };
    for (const _ of [1, 2]) {
      const run = await runFixture(env);
      expect(run.code).toBe(0);
      expect(run.summary).toMatchObject({ status: 'completed', ids: ROWS });
    }
    expect(refusedWrites(db)).toBe(0);
    expect(writes(db).every((r) => r.handled === 2)).toBe(true);
  });

  it('key-value store: a process whose first call is reset() keeps the dead letters and issues higher tokens', async () => {
    const db = createSqliteItems(ROWS);
    const env = {
      FIXTURE_DB: db,
      FIXTURE_KV_DIR: mkdtempSync(join(tmpdir(), 'pw-kv-')),
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: RANGE,
      FIXTURE_FENCED: 1,
      FIXTURE_MAX_ATTEMPTS: 1,
    };
    const first = await runFixture({ ...env, FIXTURE_FAIL_ALWAYS: '1000' });
    expect(first.summary).toMatchObject({
      status: 'completed',
      ids: ROWS - RANGE,
      ranges: { dead: 1 },
    });
    const second = await runFixture({
      ...env,
      FIXTURE_FIRST_CALL: 'reset',
      FIXTURE_PRINT_DEAD: 1,
    });
    expect(second.code).toBe(0);
    expect(second.summary).toMatchObject({ status: 'completed', ids: ROWS });
    const printed = second.output
      .split('\n')
      .find((l) => l.startsWith('DEAD '));
    const dead = JSON.parse(printed?.slice(5) ?? '[]') as {
      range: { ids: number[] };
    }[];
    expect(dead.map((d) => d.range.ids.includes(1000))).toEqual([true]);
    expect(refusedWrites(db)).toBe(0);
  });
});
