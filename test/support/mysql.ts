import { randomBytes } from 'node:crypto';
import { type Connection, createConnection } from 'mysql2/promise';

/** The MariaDB (or MySQL) the tests use: the machine's own, unless PW_TEST_MYSQL_URL says otherwise. */
export const MYSQL_URL =
  process.env.PW_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

async function withConnection<T>(
  fn: (c: Connection) => Promise<T>,
): Promise<T> {
  const conn = await createConnection({ uri: MYSQL_URL });
  try {
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

/** A fresh InnoDB table `items_<random>(id, payload, processed, max_attempt)` with ids 1..`rows`, as createPgItems. */
export function createMysqlItems(rows: number): Promise<string> {
  const table = `items_${randomBytes(4).toString('hex')}`;
  return withConnection(async (c) => {
    await c.query(
      `CREATE TABLE ${table} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(64) NOT NULL DEFAULT 'x', processed INT NOT NULL DEFAULT 0, max_attempt INT NOT NULL DEFAULT 0) ENGINE=InnoDB`,
    );
    // 1..rows from the digits 0-9 crossed six times (up to a million rows), in MariaDB and MySQL alike.
    const digits = `(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)`;
    const n =
      'a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d + 1';
    await c.query(
      `INSERT INTO ${table} (id, payload) SELECT n, CONCAT('row ', n) FROM (SELECT ${n} AS n FROM ${['a', 'b', 'c', 'e', 'f', 'g'].map((x) => `${digits} ${x}`).join(', ')}) s WHERE n <= ? ORDER BY n`,
      [rows],
    );
    return table;
  });
}

export const dropMysqlTable = (table: string) =>
  withConnection((c) => c.query(`DROP TABLE IF EXISTS ${table}`));

/** The rows of one query. */
export const mysqlQuery = <T = Record<string, unknown>>(
  sql: string,
  params: unknown[] = [],
): Promise<T[]> =>
  withConnection(async (c) => (await c.query(sql, params))[0] as T[]);
