import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import knex, { type Knex } from 'knex';
import mysqlCallback from 'mysql2';
import mysql from 'mysql2/promise';
import { Client, Pool } from 'pg';
import { DataSource, type QueryRunner } from 'typeorm';
import {
  fenceDdl,
  fenceStatements,
  FENCE_PRUNE_ROWS,
  type FenceDialect,
} from '../../lib/fence/fence-ddl';
import type {
  FenceCallOptions,
  FenceTransaction,
} from '../../lib/fence/fence-transaction';
import {
  FENCE_KEEP_MS,
  fenceKey,
  RangeFence,
} from '../../lib/fence/range-fence';

/**
 * `ctx.fence(tx)` (DESIGN 3a) against every driver it takes, on the real
 * databases: PostgreSQL, MariaDB (InnoDB, REPEATABLE READ) and SQLite files.
 */

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const MY = { host: '127.0.0.1', port: 3306, user: 'root', database: 'test' };
const TABLE = `pw_fence_contract_${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'pw-fence-'));
const SQLITE_FILE = join(dir, 'fence.db');
// The installed @types/node predates node:sqlite's types; the module is built into Node 24.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { DatabaseSync } = require('node:sqlite') as {
  DatabaseSync: new (
    file: string,
    options: { timeout: number },
  ) => { exec(sql: string): void; close(): void };
};

/** One connection that can hold a transaction, and what `ctx.fence` is given for it. */
interface Session {
  tx: FenceTransaction;
  options?: FenceCallOptions;
  begin(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  end(): Promise<void>;
}

interface Adapter {
  name: string;
  dialect: FenceDialect;
  open(): Promise<Session>;
  /** The adapter's handle outside any transaction, where the fence can tell; absent where it cannot (a function). */
  outside?(): Promise<{ tx: FenceTransaction; end(): Promise<void> }>;
}

// ---- admin connections, to set up and read the fence table outside the code under test ----

let pgAdmin: Pool;
let myAdmin: mysql.Pool;
let liteAdmin: BetterSqlite3.Database;

async function adminQuery(
  dialect: FenceDialect,
  sql: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  if (dialect === 'postgres') {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    return (await pgAdmin.query(text, params)).rows;
  }
  if (dialect === 'mysql')
    return (await myAdmin.query(sql, params))[0] as Record<string, unknown>[];
  const stmt = liteAdmin.prepare(sql);
  if (stmt.reader) return stmt.all(...params) as Record<string, unknown>[];
  stmt.run(...params);
  return [];
}

const rowsOf = async (dialect: FenceDialect, job: string) =>
  (
    await adminQuery(
      dialect,
      `SELECT run_id, token, ids, first_id FROM ${TABLE} WHERE job = ? ORDER BY run_id, token`,
      [job],
    )
  ).map((r) => ({
    run_id: r.run_id,
    token: Number(r.token),
    ids: Number(r.ids),
    first_id: r.first_id,
  }));

// ---- adapters ----

const pgTx = (c: {
  query(sql: string): Promise<unknown>;
}): Omit<Session, 'tx' | 'end'> => ({
  begin: async () => void (await c.query('BEGIN')),
  commit: async () => void (await c.query('COMMIT')),
  rollback: async () => void (await c.query('ROLLBACK')),
});

const myTx = (c: mysql.Connection): Omit<Session, 'tx' | 'end'> => ({
  begin: () => c.beginTransaction(),
  commit: () => c.commit(),
  rollback: () => c.rollback(),
});

/** SQLite connections wait this long for the one writer. */
const BUSY_MS = 5000;

const betterSqlite = () => new BetterSqlite3(SQLITE_FILE, { timeout: BUSY_MS });
const nodeSqlite = () => new DatabaseSync(SQLITE_FILE, { timeout: BUSY_MS });
const liteTx = (db: {
  exec(sql: string): unknown;
}): Omit<Session, 'tx' | 'end'> => ({
  begin: async () => void db.exec('BEGIN'),
  commit: async () => void db.exec('COMMIT'),
  rollback: async () => void db.exec('ROLLBACK'),
});

function knexAdapter(
  name: string,
  dialect: FenceDialect,
  config: Knex.Config,
): Adapter {
  return {
    name,
    dialect,
    open: async () => {
      // One instance per session: SQLite's knex pool holds one connection, and a session holds it.
      const k = knex({ ...config, pool: { min: 0, max: 1 } });
      let trx: Knex.Transaction | undefined;
      const session: Session = {
        tx: undefined as unknown as FenceTransaction,
        begin: async () => {
          trx = await k.transaction();
          session.tx = trx;
        },
        commit: async () => void (await trx!.commit()),
        rollback: async () => void (await trx!.rollback()),
        end: () => k.destroy(),
      };
      return session;
    },
    outside: async () => {
      const k = knex({ ...config, pool: { min: 0, max: 1 } });
      return { tx: k, end: () => k.destroy() };
    },
  };
}

type TypeormOptions = ConstructorParameters<typeof DataSource>[0];

function typeormAdapter(
  name: string,
  dialect: FenceDialect,
  options: TypeormOptions,
  pass: 'manager' | 'runner',
): Adapter {
  return {
    name,
    dialect,
    open: async () => {
      // One DataSource per session: better-sqlite3's holds one connection.
      const ds = await new DataSource(options).initialize();
      let qr: QueryRunner | undefined;
      const session: Session = {
        tx: undefined as unknown as FenceTransaction,
        begin: async () => {
          qr = ds.createQueryRunner();
          await qr.connect();
          await qr.startTransaction();
          session.tx = pass === 'manager' ? qr.manager : qr;
        },
        commit: async () => {
          await qr!.commitTransaction();
          await qr!.release();
        },
        rollback: async () => {
          await qr!.rollbackTransaction();
          await qr!.release();
        },
        end: () => ds.destroy(),
      };
      return session;
    },
    outside: async () => {
      const ds = await new DataSource(options).initialize();
      if (pass === 'manager')
        return { tx: ds.manager, end: () => ds.destroy() };
      const qr = ds.createQueryRunner();
      await qr.connect();
      return {
        tx: qr,
        end: async () => {
          await qr.release();
          await ds.destroy();
        },
      };
    },
  };
}

const PG_TYPEORM: TypeormOptions = { type: 'postgres', url: PG_URL };
const MY_TYPEORM = (type: 'mariadb' | 'mysql'): TypeormOptions => ({
  type,
  ...MY,
  username: MY.user,
});
const LITE_TYPEORM: TypeormOptions = {
  type: 'better-sqlite3',
  database: SQLITE_FILE,
  timeout: BUSY_MS,
};

const ADAPTERS: Adapter[] = [
  {
    name: 'node-postgres Client',
    dialect: 'postgres',
    open: async () => {
      const c = new Client(PG_URL);
      await c.connect();
      return { tx: c, ...pgTx(c), end: () => c.end() };
    },
    outside: async () => {
      const c = new Client(PG_URL);
      await c.connect();
      return { tx: c, end: () => c.end() };
    },
  },
  {
    name: "node-postgres Pool's client",
    dialect: 'postgres',
    open: async () => {
      const pool = new Pool({ connectionString: PG_URL, max: 1 });
      const c = await pool.connect();
      return {
        tx: c,
        ...pgTx(c),
        end: async () => {
          c.release();
          await pool.end();
        },
      };
    },
    outside: async () => {
      const pool = new Pool({ connectionString: PG_URL, max: 1 });
      const c = await pool.connect();
      return {
        tx: c,
        end: async () => {
          c.release();
          await pool.end();
        },
      };
    },
  },
  {
    name: 'mysql2/promise connection',
    dialect: 'mysql',
    open: async () => {
      const c = await mysql.createConnection(MY);
      return { tx: c, ...myTx(c), end: () => c.end() };
    },
    outside: async () => {
      const c = await mysql.createConnection(MY);
      return { tx: c, end: () => c.end() };
    },
  },
  {
    name: 'mysql2 callback connection',
    dialect: 'mysql',
    open: async () => {
      const c = mysqlCallback.createConnection(MY);
      return { tx: c, ...myTx(c.promise()), end: () => c.promise().end() };
    },
    outside: async () => {
      const c = mysqlCallback.createConnection(MY);
      return { tx: c, end: () => c.promise().end() };
    },
  },
  {
    name: "mysql2/promise pool's connection",
    dialect: 'mysql',
    open: async () => {
      const pool = mysql.createPool({ ...MY, connectionLimit: 1 });
      const c = await pool.getConnection();
      return {
        tx: c,
        ...myTx(c),
        end: async () => {
          c.release();
          await pool.end();
        },
      };
    },
    outside: async () => {
      const pool = mysql.createPool({ ...MY, connectionLimit: 1 });
      const c = await pool.getConnection();
      return {
        tx: c,
        end: async () => {
          c.release();
          await pool.end();
        },
      };
    },
  },
  {
    name: 'better-sqlite3 Database',
    dialect: 'sqlite',
    open: async () => {
      const db = betterSqlite();
      return { tx: db, ...liteTx(db), end: async () => void db.close() };
    },
    outside: async () => {
      const db = betterSqlite();
      return { tx: db, end: async () => void db.close() };
    },
  },
  {
    name: 'node:sqlite DatabaseSync',
    dialect: 'sqlite',
    open: async () => {
      const db = nodeSqlite();
      return { tx: db, ...liteTx(db), end: async () => void db.close() };
    },
    outside: async () => {
      const db = nodeSqlite();
      return { tx: db, end: async () => void db.close() };
    },
  },
  knexAdapter('Knex transaction on pg', 'postgres', {
    client: 'pg',
    connection: PG_URL,
  }),
  knexAdapter('Knex transaction on mysql2', 'mysql', {
    client: 'mysql2',
    connection: MY,
  }),
  knexAdapter('Knex transaction on better-sqlite3', 'sqlite', {
    client: 'better-sqlite3',
    connection: { filename: SQLITE_FILE, options: { timeout: BUSY_MS } },
    useNullAsDefault: true,
  } as Knex.Config),
  typeormAdapter(
    'TypeORM EntityManager on postgres',
    'postgres',
    PG_TYPEORM,
    'manager',
  ),
  typeormAdapter(
    'TypeORM QueryRunner on postgres',
    'postgres',
    PG_TYPEORM,
    'runner',
  ),
  typeormAdapter(
    'TypeORM EntityManager on mariadb',
    'mysql',
    MY_TYPEORM('mariadb'),
    'manager',
  ),
  typeormAdapter(
    'TypeORM QueryRunner on mysql',
    'mysql',
    MY_TYPEORM('mysql'),
    'runner',
  ),
  typeormAdapter(
    'TypeORM EntityManager on better-sqlite3',
    'sqlite',
    LITE_TYPEORM,
    'manager',
  ),
  typeormAdapter(
    'TypeORM QueryRunner on better-sqlite3',
    'sqlite',
    LITE_TYPEORM,
    'runner',
  ),
  {
    name: 'function on node-postgres',
    dialect: 'postgres',
    open: async () => {
      const c = new Client(PG_URL);
      await c.connect();
      return {
        tx: async (sql: string, params: (string | number)[]) =>
          (await c.query(sql, params)).rowCount ?? 0,
        options: { dialect: 'postgres' },
        ...pgTx(c),
        end: () => c.end(),
      };
    },
  },
  {
    name: 'function on mysql2',
    dialect: 'mysql',
    open: async () => {
      const c = await mysql.createConnection(MY);
      return {
        tx: async (sql: string, params: (string | number)[]) =>
          ((await c.query(sql, params))[0] as mysql.ResultSetHeader)
            .affectedRows,
        options: { dialect: 'mysql' },
        ...myTx(c),
        end: () => c.end(),
      };
    },
  },
  {
    name: 'function on better-sqlite3',
    dialect: 'sqlite',
    open: async () => {
      const db = betterSqlite();
      return {
        tx: async (sql: string, params: (string | number)[]) =>
          db.prepare(sql).run(...params).changes,
        options: { dialect: 'sqlite' },
        ...liteTx(db),
        end: async () => void db.close(),
      };
    },
  },
];

/**
 * SQLite's drivers are synchronous: a connection waiting on the busy timeout
 * blocks its thread. The other writer (attempt A) therefore runs in a worker
 * thread: it writes the range's fence row in a transaction, holds it for
 * `holdMs`, then commits or rolls back and reports when. It uses B's SQLite
 * library: POSIX locks are per process, so two copies of SQLite in one
 * process (better-sqlite3's and node:sqlite's) do not see each other's locks.
 */
function holdInWorker(
  ids: number[],
  job: string,
  runId: string,
  end: 'COMMIT' | 'ROLLBACK',
  holdMs: number,
  nodeSqlite: boolean,
): { held: Promise<void>; ending: Promise<number> } {
  const worker = new Worker(
    `const { parentPort, workerData: w } = require('node:worker_threads');
     const db = w.nodeSqlite
       ? new (require('node:sqlite').DatabaseSync)(w.file, { timeout: 5000 })
       : new (require(w.driver))(w.file, { timeout: 5000 });
     db.exec('BEGIN');
     const n = db.prepare(w.insert).run(...w.params).changes;
     parentPort.postMessage({ held: n });
     setTimeout(() => { parentPort.postMessage({ ending: Date.now() }); db.exec(w.end); db.close(); }, w.holdMs);`,
    {
      eval: true,
      workerData: {
        driver: require.resolve('better-sqlite3'),
        nodeSqlite,
        file: SQLITE_FILE,
        insert: fenceStatements('sqlite', TABLE).insert,
        params: [
          job,
          runId,
          fenceKey(job, runId, null, ids),
          String(ids[0]),
          ids.length,
          999,
          Date.now(),
        ],
        end,
        holdMs,
      },
    },
  );
  let heldResolve!: () => void;
  let endedResolve!: (at: number) => void;
  const held = new Promise<void>((r) => (heldResolve = r));
  const ended = new Promise<number>((r) => (endedResolve = r));
  worker.on('message', (m: { held?: number; ending?: number }) => {
    if (m.held !== undefined) heldResolve();
    if (m.ending !== undefined) endedResolve(m.ending);
  });
  worker.on('error', (e) => {
    throw e;
  });
  return { held, ending: ended };
}

/** Settles `p` within `ms`, or says it is still pending. */
const within = async <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<'pending'>((resolve) => {
        timer = setTimeout(() => resolve('pending'), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};

beforeAll(async () => {
  pgAdmin = new Pool({ connectionString: PG_URL, max: 2 });
  myAdmin = mysql.createPool({ ...MY, connectionLimit: 2 });
  liteAdmin = new BetterSqlite3(SQLITE_FILE, { timeout: BUSY_MS });
  await pgAdmin.query(fenceDdl('postgres', TABLE));
  await myAdmin.query(fenceDdl('mysql', TABLE));
  liteAdmin.exec(fenceDdl('sqlite', TABLE));
});

afterAll(async () => {
  await pgAdmin.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await myAdmin.query(`DROP TABLE IF EXISTS ${TABLE}`);
  liteAdmin.close();
  await pgAdmin.end();
  await myAdmin.end();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(ADAPTERS)('ctx.fence with a $name', (adapter) => {
  // A function cannot read rows, and on MySQL a prune that cannot would be a locking DELETE: it does not prune.
  const prunes = !(
    adapter.dialect === 'mysql' && adapter.name.startsWith('function')
  );
  const { dialect } = adapter;
  /** A job of its own per test: tests never see each other's rows. */
  let job: string;
  let sessions: Session[];
  let n = 0;
  const open = async () => {
    const s = await adapter.open();
    sessions.push(s);
    return s;
  };

  beforeEach(() => {
    job = `${adapter.name.replace(/\W+/g, '-')}-${++n}`;
    sessions = [];
  });
  afterEach(async () => {
    for (const s of sessions) await s.rollback().catch(() => undefined);
    for (const s of sessions) await s.end();
  });

  it('resolves true first, false for a later attempt once committed, true again after a rollback', async () => {
    const ids = [3, 4, 5];
    const s = await open();

    await s.begin();
    expect(
      await new RangeFence(job, 'run-1', TABLE).forRange({
        ids: ids,
        prev: null,
        token: 1,
      })(s.tx, s.options),
    ).toBe(true);
    await s.rollback();
    expect(await rowsOf(dialect, job)).toEqual([]);

    await s.begin();
    expect(
      await new RangeFence(job, 'run-1', TABLE).forRange({
        ids: ids,
        prev: null,
        token: 2,
      })(s.tx, s.options),
    ).toBe(true);
    await s.commit();

    await s.begin();
    expect(
      await new RangeFence(job, 'run-1', TABLE).forRange({
        ids: ids,
        prev: null,
        token: 3,
      })(s.tx, s.options),
    ).toBe(false);
    await s.commit();
    expect(await rowsOf(dialect, job)).toEqual([
      { run_id: 'run-1', token: 2, ids: 3, first_id: '3' },
    ]);
  });

  it.each(['COMMIT', 'ROLLBACK'] as const)(
    'makes a concurrent attempt at the range wait for the open one, then %s decides it',
    async (end) => {
      const ids = [10, 11];
      const fence = new RangeFence(job, 'run-1', TABLE);
      const b = await open();
      let bOutcome: boolean;
      if (dialect === 'sqlite') {
        // B blocks this thread on the busy timeout until A (a worker thread) ends; it must come back after A began to end.
        const held = holdInWorker(
          ids,
          job,
          'run-1',
          end,
          400,
          adapter.name.startsWith('node:sqlite'),
        );
        await held.held;
        await b.begin();
        bOutcome = await fence.forRange({ ids: ids, prev: null, token: 2 })(
          b.tx,
          b.options,
        );
        const bAt = Date.now();
        expect(bAt).toBeGreaterThanOrEqual(await held.ending);
      } else {
        const a = await open();
        await a.begin();
        expect(
          await fence.forRange({ ids: ids, prev: null, token: 1 })(
            a.tx,
            a.options,
          ),
        ).toBe(true);
        await b.begin();
        const outcome = fence.forRange({ ids: ids, prev: null, token: 2 })(
          b.tx,
          b.options,
        );
        expect(await within(outcome, 400)).toBe('pending');
        await (end === 'COMMIT' ? a.commit() : a.rollback());
        bOutcome = await outcome;
      }
      await b.commit();
      expect(bOutcome).toBe(end === 'ROLLBACK');
      expect((await rowsOf(dialect, job)).map((r) => r.token)).toEqual([
        end === 'COMMIT' ? (dialect === 'sqlite' ? 999 : 1) : 2,
      ]);
    },
  );

  // SQLite has one writer: there every transaction waits for the open one.
  const waitsForOthers = dialect === 'sqlite';
  (waitsForOthers ? it.skip : it)(
    'does not make an attempt at another range wait while the open one prunes, nor two prunes wait for each other',
    async () => {
      await adminQuery(
        dialect,
        `INSERT INTO ${TABLE} (job, run_id, range_key, first_id, ids, token, at) VALUES (?, 'run-1', 'k1', '1', 1, 1, 0), (?, 'run-1', 'k2', '1', 1, 1, 0)`,
        [job, job],
      );
      const [a, b, c] = [await open(), await open(), await open()];
      const fence = new RangeFence(job, 'run-2', TABLE);
      await a.begin();
      expect(
        await fence.forRange({ ids: [1], prev: null, token: 1 })(
          a.tx,
          a.options,
        ),
      ).toBe(true); // its first call: it prunes
      await b.begin();
      expect(
        await within(
          fence.forRange({ ids: [2], prev: null, token: 1 })(b.tx, b.options),
          3000,
        ),
      ).toBe(true);
      // Another process's first call of the run prunes too, while A's prune is open.
      await c.begin();
      expect(
        await within(
          new RangeFence(job, 'run-2', TABLE).forRange({
            ids: [3],
            prev: null,
            token: 1,
          })(c.tx, c.options),
          3000,
        ),
      ).toBe(true);
      for (const s of [a, b, c]) await s.commit();
      expect((await rowsOf(dialect, job)).map((r) => r.run_id)).toEqual([
        ...(prunes ? [] : ['run-1', 'run-1']),
        'run-2',
        'run-2',
        'run-2',
      ]);
    },
  );

  it('treats a failed-ids sub-range as a range of its own, and another run as new work', async () => {
    const s = await open();
    await s.begin();
    expect(
      await new RangeFence(job, 'run-1', TABLE).forRange({
        ids: [1, 2, 3, 4],
        prev: null,
        token: 1,
      })(s.tx, s.options),
    ).toBe(true);
    await s.commit();
    await s.begin();
    expect(
      await new RangeFence(job, 'run-1', TABLE).forRange({
        ids: [2, 4],
        prev: null,
        token: 2,
      })(s.tx, s.options),
    ).toBe(true);
    expect(
      await new RangeFence(job, 'run-2', TABLE).forRange({
        ids: [1, 2, 3, 4],
        prev: null,
        token: 1,
      })(s.tx, s.options),
    ).toBe(true);
    await s.commit();
    await s.begin();
    expect(
      await new RangeFence(job, 'run-1', TABLE).forRange({
        ids: [2, 4],
        prev: null,
        token: 3,
      })(s.tx, s.options),
    ).toBe(false);
    await s.commit();
    expect((await rowsOf(dialect, job)).map((r) => [r.run_id, r.ids])).toEqual([
      ['run-1', 4],
      ['run-1', 2],
      ['run-2', 4],
    ]);
  });

  it('tells apart ranges without ids by the cursor before them, and keeps the identity of a range another run loaded', async () => {
    const s = await open();
    await s.begin();
    const now = new RangeFence(job, 'run-1', TABLE);
    // A loader's object form without idsRange: ranges differ only in their bounds.
    expect(
      await now.forRange({ ids: [], prev: 10, token: 1 })(s.tx, s.options),
    ).toBe(true);
    expect(
      await now.forRange({ ids: [], prev: 20, token: 2 })(s.tx, s.options),
    ).toBe(true);
    await s.commit();
    await s.begin();
    // Handed out again by a later run (after a cancel, retryDead): the same range, already applied.
    expect(
      await new RangeFence(job, 'run-2', TABLE).forRange({
        ids: [],
        prev: 10,
        token: 3,
        run: 'run-1',
      })(s.tx, s.options),
    ).toBe(false);
    await s.commit();
    expect((await rowsOf(dialect, job)).map((r) => r.run_id)).toEqual([
      'run-1',
      'run-1',
    ]);
  });

  it('names a missing table and the DDL that makes it', async () => {
    const s = await open();
    await s.begin();
    const missing = `${TABLE}_missing`;
    const error = await new RangeFence(job, 'run-1', missing)
      .forRange({ ids: [1], prev: null, token: 1 })(s.tx, s.options)
      .catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(`no table ${missing}`);
    expect((error as Error).message).toContain(
      fenceDdl(dialect, missing).replace(/\s+/g, ' '),
    );
  });

  if (adapter.outside)
    it('refuses its handle outside a transaction, and writes nothing', async () => {
      const out = await adapter.outside!();
      try {
        const error = await new RangeFence(job, 'run-1', TABLE)
          .forRange({ ids: [1], prev: null, token: 1 })(out.tx)
          .catch((e: Error) => e);
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).message).toMatch(
          /not inside a transaction|outside a transaction|not a transaction/,
        );
        expect(await rowsOf(dialect, job)).toEqual([]);
      } finally {
        await out.end();
      }
    });

  it('throws on a second call in an attempt whose first call committed', async () => {
    const s = await open();
    const fence = new RangeFence(job, 'run-1', TABLE).forRange({
      ids: [7],
      prev: null,
      token: 1,
    });
    await s.begin();
    expect(await fence(s.tx, s.options)).toBe(true);
    await s.commit();
    await s.begin();
    await expect(fence(s.tx, s.options)).rejects.toThrow(
      /called again for a range whose earlier call in this attempt committed/,
    );
  });

  it("prunes old rows of the job's other runs on its first call, a bounded number at a time", async () => {
    const old = Date.now() - FENCE_KEEP_MS - 60_000;
    const recent = Date.now() - FENCE_KEEP_MS + 60_000;
    const values = (runId: string, forJob: string, at: number, count: number) =>
      Array.from(
        { length: count },
        (_, i) =>
          `('${forJob}', '${runId}', '${runId}-${i}', '${i}', 1, 1, ${at})`,
      ).join(', ');
    await adminQuery(
      dialect,
      `INSERT INTO ${TABLE} (job, run_id, range_key, first_id, ids, token, at) VALUES ${[
        values('old', job, old, FENCE_PRUNE_ROWS + 3),
        values('recent', job, recent, 2),
        values('run-now', job, old, 2),
        values('old', `${job}-other`, old, 2),
      ].join(', ')}`,
    );
    const count = async (forJob = job) =>
      Object.fromEntries(
        (
          await adminQuery(
            dialect,
            `SELECT run_id, COUNT(*) AS n FROM ${TABLE} WHERE job = ? GROUP BY run_id`,
            [forJob],
          )
        ).map((r) => [r.run_id, Number(r.n)]),
      );
    const s = await open();
    await s.begin();
    expect(
      await new RangeFence(job, 'run-now', TABLE).forRange({
        ids: [1],
        prev: null,
        token: 1,
      })(s.tx, s.options),
    ).toBe(true);
    await s.commit();
    expect(await count()).toEqual(
      prunes
        ? { old: 3, recent: 2, 'run-now': 3 }
        : { old: FENCE_PRUNE_ROWS + 3, recent: 2, 'run-now': 3 },
    );
    expect(await count(`${job}-other`)).toEqual({ old: 2 });
    await adminQuery(dialect, `DELETE FROM ${TABLE} WHERE job = ?`, [
      `${job}-other`,
    ]);
  });
});

describe('ctx.fence refuses what is not a transaction', () => {
  const fence = new RangeFence('refusals', 'run-1', TABLE).forRange({
    ids: [1],
    prev: null,
    token: 1,
  });
  const refused = (tx: unknown, options?: FenceCallOptions) =>
    fence(tx as FenceTransaction, options).catch((e: Error) => e.message);

  it('a node-postgres Pool', async () => {
    const pool = new Pool({ connectionString: PG_URL, max: 1 });
    try {
      expect(await refused(pool)).toMatch(
        /cannot use a node-postgres Pool, not a transaction/,
      );
    } finally {
      await pool.end();
    }
  });

  it('a mysql2 pool, promise or callback', async () => {
    const pool = mysql.createPool({ ...MY, connectionLimit: 1 });
    const callbackPool = mysqlCallback.createPool({
      ...MY,
      connectionLimit: 1,
    });
    try {
      expect(await refused(pool)).toMatch(
        /cannot use a mysql2 pool, not a transaction/,
      );
      expect(await refused(callbackPool)).toMatch(
        /cannot use a mysql2 pool, not a transaction/,
      );
    } finally {
      await pool.end();
      await callbackPool.promise().end();
    }
  });

  it('a function without a dialect, a plain object, nothing', async () => {
    expect(await refused(async () => 1)).toMatch(
      /cannot use a function with no dialect/,
    );
    expect(await refused({ query: () => 1 })).toMatch(
      /cannot use an object \(Object\), which is none of the transactions the fence knows/,
    );
    expect(await refused(undefined)).toMatch(/cannot use undefined/);
    expect(
      await adminQuery(
        'postgres',
        `SELECT * FROM ${TABLE} WHERE job = 'refusals'`,
      ),
    ).toEqual([]);
  });
});

describe('ctx.fence on PostgreSQL at other isolation levels', () => {
  it.each(['REPEATABLE READ', 'SERIALIZABLE'])(
    'does not prune under %s (a prune racing another would abort the transaction)',
    async (level) => {
      const job = `iso-${randomBytes(3).toString('hex')}`;
      await pgAdmin.query(
        `INSERT INTO ${TABLE} (job, run_id, range_key, first_id, ids, token, at) VALUES ($1, 'old', 'k1', '1', 1, 1, 0)`,
        [job],
      );
      const c = new Client(PG_URL);
      await c.connect();
      try {
        await c.query(`BEGIN ISOLATION LEVEL ${level}`);
        expect(
          await new RangeFence(job, 'run-1', TABLE).forRange({
            ids: [1],
            prev: null,
            token: 1,
          })(c),
        ).toBe(true);
        await c.query('COMMIT');
        const left = await pgAdmin.query(
          `SELECT run_id FROM ${TABLE} WHERE job = $1 ORDER BY run_id`,
          [job],
        );
        expect(left.rows.map((r) => r.run_id)).toEqual(['old', 'run-1']);
      } finally {
        await c.end();
        await pgAdmin.query(`DELETE FROM ${TABLE} WHERE job = $1`, [job]);
      }
    },
  );
});

describe('ctx.fence with a function that does not resolve a count', () => {
  it('says what the function must resolve, naming the job', async () => {
    const fence = new RangeFence('no-count', 'run-1', TABLE).forRange({
      ids: [1],
      prev: null,
      token: 1,
    });
    await expect(
      fence(async () => undefined, {
        dialect: 'postgres',
      }),
    ).rejects.toThrow(
      /^Job "no-count": ctx\.fence\(\) cannot tell whether its row was written: a query function answered \[object Undefined\], with no count of rows changed; the function must resolve the number of rows the statement changed\.$/,
    );
  });
});

describe('fenceDdl', () => {
  it('refuses a dialect it does not know and a table name that needs quoting', () => {
    expect(() => fenceDdl('oracle' as FenceDialect)).toThrow(
      "fenceDdl(): dialect must be one of 'postgres', 'mysql', 'sqlite', got 'oracle'.",
    );
    for (const table of [
      'fence; DROP TABLE users',
      'a.b.c',
      '1fence',
      '',
      'x'.repeat(64),
    ])
      expect(() => fenceDdl('postgres', table)).toThrow(
        /fenceDdl\(\): table must be a table name/,
      );
  });

  it('makes a table that works under a schema-qualified name on PostgreSQL', async () => {
    const schema = `${TABLE}_schema`;
    const table = `${schema}.fence`;
    await pgAdmin.query(`CREATE SCHEMA ${schema}`);
    const c = new Client(PG_URL);
    await c.connect();
    try {
      await pgAdmin.query(fenceDdl('postgres', table));
      await pgAdmin.query(fenceDdl('postgres', table)); // IF NOT EXISTS: a start-up step may run it every time
      await c.query('BEGIN');
      expect(
        await new RangeFence('schema', 'run-1', table).forRange({
          ids: [1],
          prev: null,
          token: 1,
        })(c),
      ).toBe(true);
      await c.query('COMMIT');
      await c.query('BEGIN');
      expect(
        await new RangeFence('schema', 'run-1', table).forRange({
          ids: [1],
          prev: null,
          token: 2,
        })(c),
      ).toBe(false);
      await c.query('COMMIT');
      expect((await pgAdmin.query(`SELECT token FROM ${table}`)).rows).toEqual([
        { token: '1' },
      ]);
    } finally {
      await c.end();
      await pgAdmin.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });
});
