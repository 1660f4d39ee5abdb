import type { FenceDialect } from './fence-ddl';

/**
 * The function form of `ctx.fence(fn, { dialect })`: runs one statement in
 * the caller's transaction and resolves the number of rows it changed.
 * Placeholders are `$1, $2…` for `'postgres'` and `?` for the others.
 */
export type FenceQuery = (
  sql: string,
  params: (string | number)[],
) => Promise<number>;

/** What `ctx.fence(tx)` takes: a transaction of a driver it knows, or a `FenceQuery`. */
export type FenceTransaction = FenceQuery | object;

export interface FenceCallOptions {
  /** The database a `FenceQuery` function runs on (required for one; others tell it themselves). */
  dialect?: FenceDialect;
}

/** One transaction, as the fence uses it. */
export interface FenceConnection {
  dialect: FenceDialect;
  /** What it is, for messages (`a node-postgres client`). */
  kind: string;
  /** Runs a statement with `?` placeholders in the transaction; resolves rows changed. */
  run(sql: string, params: (string | number)[]): Promise<number>;
  /** Runs a `SELECT` with `?` placeholders in the transaction; resolves its rows. Absent for a function. */
  select?(
    sql: string,
    params: (string | number)[],
  ): Promise<Record<string, unknown>[]>;
  /** Whether the connection is inside a transaction; undefined where that cannot be told. */
  inTransaction(): Promise<boolean | undefined> | boolean | undefined;
}

/** `?` placeholders to `$1, $2…`. The fence's own statements have no `?` in literals. */
const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

/** The rows a driver's result says it changed. */
function changed(result: unknown): number {
  if (typeof result === 'number') return result;
  if (Array.isArray(result)) {
    // mysql2 (and Knex on it): [ResultSetHeader, fields]; TypeORM's raw DELETE on PostgreSQL: [rows, count].
    if (result.length > 0 && typeof result[0] === 'object' && result[0])
      return changed(result[0]);
    if (typeof result[1] === 'number') return result[1];
  }
  const r = (result ?? {}) as Record<string, unknown>;
  for (const key of ['rowCount', 'affectedRows', 'changes', 'affected'])
    if (typeof r[key] === 'number' || typeof r[key] === 'bigint')
      return Number(r[key]);
  throw new NoRowCount(
    `answered ${Object.prototype.toString.call(result)}, with no count of rows changed`,
  );
}

/** A driver's answer without a count of rows changed. */
export class NoRowCount extends Error {}

type Any = Record<string, any>;
const fn = (o: unknown, name: string): boolean =>
  !!o && typeof (o as Any)[name] === 'function';

const KNEX_DIALECTS: Record<string, FenceDialect> = {
  pg: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mysql2: 'mysql',
  'better-sqlite3': 'sqlite',
};

const TYPEORM_DIALECTS: Record<string, FenceDialect> = {
  postgres: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
  sqlite: 'sqlite',
  'better-sqlite3': 'sqlite',
};

/**
 * What `tx` is and how to run the fence's statements in it, or a description
 * of what it is when the fence cannot use it.
 */
export function fenceConnection(
  tx: unknown,
  options: FenceCallOptions = {},
): FenceConnection | { unusable: string } {
  const t = tx as Any;
  // Knex: a transaction is a function with the query builder's methods.
  if (typeof tx === 'function' && fn(tx, 'raw') && t.client) {
    const dialect =
      KNEX_DIALECTS[String(t.client.driverName ?? t.client.dialect)];
    if (t.client.driverName === 'sqlite3')
      return {
        unusable:
          "a Knex transaction on the sqlite3 client, whose raw() does not tell rows changed: use Knex's better-sqlite3 client",
      };
    if (!dialect)
      return {
        unusable: `a Knex instance on ${show(t.client.dialect)}, a database the fence does not know`,
      };
    if (!t.isTransaction)
      return {
        unusable:
          'a Knex instance, not a transaction: pass the trx of knex.transaction(async (trx) => …)',
      };
    return {
      dialect,
      kind: 'a Knex transaction',
      run: async (sql, params) => changed(await t.raw(sql, params)),
      // pg: a Result; mysql2: [rows, fields]; SQLite: the rows.
      select: async (sql, params) => {
        const result = (await t.raw(sql, params)) as unknown;
        if (dialect === 'postgres') return (result as { rows: Any[] }).rows;
        return (dialect === 'mysql' ? (result as Any[][])[0] : result) as Any[];
      },
      inTransaction: () => true,
    };
  }
  if (typeof tx === 'function') {
    if (!options.dialect)
      return {
        unusable:
          "a function with no dialect: call ctx.fence(fn, { dialect: 'postgres' | 'mysql' | 'sqlite' })",
      };
    const dialect = options.dialect;
    const query = tx as FenceQuery;
    return {
      dialect,
      kind: 'a query function',
      run: async (sql, params) =>
        changed(
          await query(dialect === 'postgres' ? numbered(sql) : sql, params),
        ),
      inTransaction: () => undefined,
    };
  }
  if (!tx || typeof tx !== 'object') return { unusable: show(tx) };
  // TypeORM: an EntityManager (of a transaction: it has its query runner) or a QueryRunner.
  const source = t.dataSource ?? t.connection;
  if (fn(t, 'query') && source?.options?.type !== undefined) {
    const type = String(source.options.type);
    const dialect = TYPEORM_DIALECTS[type];
    if (!dialect)
      return {
        unusable: `a TypeORM ${type} connection, a database the fence does not know`,
      };
    // An EntityManager has release() too (TypeORM 1.x); only a QueryRunner starts transactions.
    const runner = fn(t, 'startTransaction') ? t : t.queryRunner;
    if (!runner)
      return {
        unusable:
          'a TypeORM EntityManager outside a transaction: pass the manager of dataSource.transaction(async (manager) => …)',
      };
    return {
      dialect,
      kind: `a TypeORM ${runner === t ? 'QueryRunner' : 'EntityManager'}`,
      run: async (sql, params) =>
        changed(
          await runner.query(
            dialect === 'postgres' ? numbered(sql) : sql,
            params,
            true,
          ),
        ),
      select: async (sql, params) =>
        (await runner.query(
          dialect === 'postgres' ? numbered(sql) : sql,
          params,
        )) as Any[],
      inTransaction: () => !!runner.isTransactionActive,
    };
  }
  // node-postgres: a Client (a pool's client is one); a Pool is not a transaction.
  if (fn(t, 'query') && 'connectionParameters' in t) {
    return {
      dialect: 'postgres',
      kind: 'a node-postgres client',
      run: async (sql, params) => changed(await t.query(numbered(sql), params)),
      select: async (sql, params) =>
        (await t.query(numbered(sql), params)).rows as Any[],
      inTransaction: () =>
        fn(t, 'getTransactionStatus')
          ? t.getTransactionStatus() !== 'I'
          : undefined,
    };
  }
  if (fn(t, 'query') && fn(t, 'connect') && 'totalCount' in t)
    return {
      unusable:
        'a node-postgres Pool, not a transaction: const client = await pool.connect(), BEGIN on it, and pass the client',
    };
  // mysql2: a connection (callback or promise API); a pool is not a transaction.
  if (fn(t, 'query') && fn(t, 'execute')) {
    if (fn(t, 'getConnection'))
      return {
        unusable:
          'a mysql2 pool, not a transaction: const conn = await pool.getConnection(), beginTransaction() on it, and pass conn',
      };
    const promised = fn(t, 'promise') ? t.promise() : t;
    const query = async (sql: string, params: (string | number)[]) =>
      (await promised.query(sql, params)) as [unknown, unknown];
    return {
      dialect: 'mysql',
      kind: 'a mysql2 connection',
      run: async (sql, params) => changed((await query(sql, params))[0]),
      select: async (sql, params) => (await query(sql, params))[0] as Any[],
      inTransaction: async () => {
        let rows: { t: unknown; a: unknown }[];
        try {
          [rows] = (await query(
            'SELECT @@in_transaction AS t, @@autocommit AS a',
            [],
          )) as [{ t: unknown; a: unknown }[], unknown];
        } catch (e) {
          // MariaDB's @@in_transaction; MySQL has no such variable (1193): there it cannot be told.
          if ((e as { errno?: unknown })?.errno === 1193) return undefined;
          throw e;
        }
        // autocommit off: the first statement opens the transaction.
        return Number(rows[0]?.t) === 1 || Number(rows[0]?.a) === 0;
      },
    };
  }
  // better-sqlite3 (inTransaction) and node:sqlite (isTransaction) databases.
  if (fn(t, 'prepare') && fn(t, 'exec')) {
    const flag =
      typeof t.inTransaction === 'boolean'
        ? 'inTransaction'
        : typeof t.isTransaction === 'boolean'
          ? 'isTransaction'
          : undefined;
    return {
      dialect: 'sqlite',
      kind: `a ${flag === 'inTransaction' ? 'better-sqlite3' : 'node:sqlite'} database`,
      run: (sql, params) =>
        new Promise<number>((resolve) =>
          resolve(changed(t.prepare(sql).run(...params))),
        ),
      select: async (sql, params) => t.prepare(sql).all(...params) as Any[],
      inTransaction: () => (flag ? !!t[flag] : undefined),
    };
  }
  return {
    unusable: `${show(tx)}, which is none of the transactions the fence knows`,
  };
}

function show(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object')
    return `an object (${(value.constructor as { name?: string } | undefined)?.name ?? 'Object'})`;
  if (typeof value === 'string') return `'${value}'`;
  return typeof value === 'function' ? 'a function' : `${value as number}`;
}
