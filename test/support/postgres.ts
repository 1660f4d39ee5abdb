import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { type RowCounts, toCounts } from './sqlite';

/** The PostgreSQL the tests use: the machine's own, unless PW_TEST_DATABASE_URL says otherwise. */
export const DATABASE_URL =
  process.env.PW_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function withClient<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh table `items_<random>(id bigserial, payload text, processed int, max_attempt int)` with `rows` rows. */
export function createPgItems(rows: number): Promise<string> {
  const table = `items_${randomBytes(4).toString('hex')}`;
  return withClient(async (c) => {
    await c.query(
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, payload text NOT NULL DEFAULT 'x', processed int NOT NULL DEFAULT 0, max_attempt int NOT NULL DEFAULT 0)`,
    );
    await c.query(
      `INSERT INTO ${table} (payload) SELECT 'row ' || g FROM generate_series(1, $1) g`,
      [rows],
    );
    return table;
  });
}

/** New rows at the end of a table made by createPgItems (as an app's users keep signing up). */
export const addPgItems = (table: string, rows: number): Promise<void> =>
  withClient(async (c) => {
    await c.query(
      `INSERT INTO ${table} (payload) SELECT 'row ' || g FROM generate_series(1, $1) g`,
      [rows],
    );
  });

export function pgCounts(table: string): Promise<RowCounts> {
  return withClient(async (c) => {
    const byTimes = (
      await c.query(
        `SELECT processed, COUNT(*)::int AS n FROM ${table} GROUP BY processed`,
      )
    ).rows;
    const dup = (
      await c.query(`SELECT id FROM ${table} WHERE processed > 1 ORDER BY id`)
    ).rows.map((r) => Number(r.id));
    const missed = (
      await c.query(`SELECT id FROM ${table} WHERE processed = 0 ORDER BY id`)
    ).rows.map((r) => Number(r.id));
    return toCounts(byTimes, dup, missed);
  });
}

export const dropPgTable = (table: string) =>
  withClient((c) => c.query(`DROP TABLE IF EXISTS ${table}`));

/** Rows handled at least once so far: how far a running job has got. */
export const countProcessed = (table: string): Promise<number> =>
  withClient(async (c) =>
    Number(
      (await c.query(`SELECT COUNT(*) AS n FROM ${table} WHERE processed > 0`))
        .rows[0].n,
    ),
  );

/** The rows of one query, for checks the helpers above do not make. */
export const pgQuery = <T = Record<string, unknown>>(
  sql: string,
  params: unknown[] = [],
): Promise<T[]> =>
  withClient(async (c) => (await c.query(sql, params)).rows as T[]);
