import { randomBytes } from 'node:crypto';
import { fenceDdl, type FenceDialect } from '../../lib';
import {
  createMysqlItems,
  dropMysqlTable,
  MYSQL_URL,
  mysqlQuery,
} from './mysql';
import { createPgItems, DATABASE_URL, dropPgTable, pgQuery } from './postgres';

/** A SQL server the fixture writes to, as the fence tests see it. */
export interface SqlBackend {
  name: string;
  dialect: FenceDialect;
  /** What points the fixture at it. */
  env: Record<string, string>;
  /** A fresh fixture table with ids 1..rows, all unprocessed. */
  createItems(rows: number): Promise<string>;
  /** A fresh fence table, created with fenceDdl(). */
  createFence(): Promise<string>;
  drop(table: string): Promise<void>;
  /** A query without parameters. */
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Transactions waiting on a row lock in an INSERT into `table`, as the server reports them. */
  insertsWaiting(table: string): Promise<number>;
}

const fenceName = () => `fence_${randomBytes(4).toString('hex')}`;

export const POSTGRES: SqlBackend = {
  name: 'PostgreSQL',
  dialect: 'postgres',
  env: { DATABASE_URL },
  createItems: createPgItems,
  createFence: async () => {
    const table = fenceName();
    await pgQuery(fenceDdl('postgres', table));
    return table;
  },
  drop: async (table) => void (await dropPgTable(table)),
  query: (sql) => pgQuery(sql),
  insertsWaiting: async (table) =>
    (
      await pgQuery(
        `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO ${table} %'`,
      )
    ).length,
};

export const MARIADB: SqlBackend = {
  name: 'MariaDB',
  dialect: 'mysql',
  env: { MYSQL_URL },
  createItems: createMysqlItems,
  createFence: async () => {
    const table = fenceName();
    await mysqlQuery(fenceDdl('mysql', table));
    return table;
  },
  drop: async (table) => void (await dropMysqlTable(table)),
  query: (sql) => mysqlQuery(sql),
  insertsWaiting: async (table) =>
    (
      await mysqlQuery(
        `SELECT trx_id FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE 'INSERT IGNORE INTO ${table} %'`,
      )
    ).length,
};

/** Rows never handled and rows handled more than once, from the table itself. */
export async function lostAndDuplicated(
  db: SqlBackend,
  table: string,
): Promise<{ lost: number; duplicated: number; notRetried: number }> {
  const [row] = await db.query<Record<string, unknown>>(
    `SELECT SUM(CASE WHEN processed = 0 THEN 1 ELSE 0 END) AS lost, SUM(CASE WHEN processed > 1 THEN 1 ELSE 0 END) AS duplicated, SUM(CASE WHEN processed > 1 AND max_attempt < 2 THEN 1 ELSE 0 END) AS not_retried FROM ${table}`,
  );
  return {
    lost: Number(row.lost),
    duplicated: Number(row.duplicated),
    // A row handled twice whose every handling was at attempt 1: a duplicate no lost lease explains.
    notRetried: Number(row.not_retried),
  };
}

/** Rows handled at least once so far. */
export async function handled(db: SqlBackend, table: string): Promise<number> {
  const [row] = await db.query<{ n: unknown }>(
    `SELECT COUNT(*) AS n FROM ${table} WHERE processed > 0`,
  );
  return Number(row.n);
}
