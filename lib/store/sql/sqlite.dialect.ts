/*
 * Driver: node:sqlite (built into Node >= 22.13), chosen over better-sqlite3
 * 12.11 by measurement. bench/sqlite-driver.ts runs the store's workload, a
 * claim, a commit (4 ranges) and a complete per cycle, each one BEGIN IMMEDIATE
 * transaction, WAL, synchronous=NORMAL, busy timeout, one file; Node 24.22,
 * 2 cores shared with other work, medians of 9 rounds of 3000 cycles:
 *   1 process:   node:sqlite 4,071 cycles/s, better-sqlite3 4,575 (0.89x)
 *   3 processes: node:sqlite 2,399 cycles/s, better-sqlite3 2,690 (0.89x)
 * About 11% slower, against: no native build (better-sqlite3 compiles from
 * source where no prebuilt binary fits, about 70 s here, and fails to load when
 * built against other Node headers), no dependency at all, so the default store
 * installs anywhere npm does. The cost: Node >= 22.13 for this store (Node 20
 * ended in April 2026), and an ExperimentalWarning on Node 22.
 */
import { resolve } from 'node:path';
import { ParallelWorkerConfigError } from '../../errors/parallel-worker-config.error';
import {
  SQLITE_CANNOT_OPEN,
  SQLITE_LOCKED,
  SQLITE_NOT_A_DATABASE,
  SQLITE_NEEDS_NODE,
} from '../../parallel-worker.messages';
import type {
  SqlDialect,
  SqlRow,
  SqlTransaction,
  SqlValue,
} from './sql-dialect.interface';

/** The node:sqlite calls used here (its types are not in every @types/node this package supports). */
interface Statement {
  run(...params: SqlValue[]): { changes: number | bigint };
  get(...params: SqlValue[]): SqlRow | undefined;
  all(...params: SqlValue[]): SqlRow[];
}
interface Database {
  exec(sql: string): void;
  prepare(sql: string): Statement;
  close(): void;
}

/** SQLite result codes (primary, the low byte of an extended one) this store explains. */
const SQLITE_BUSY = 5;
const SQLITE_READONLY = 8;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

/** How long a statement waits for another process's write transaction before it fails. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Store time in ms: SQLite keeps 'now' as integer ms since the Julian epoch, so this is exact. */
const NOW = `SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER) AS now`;

/**
 * One SQLite file, one connection per store instance, WAL (readers never wait
 * for the writer), synchronous=NORMAL (a power cut may lose the last
 * transactions, never corrupt the file), busy timeout (processes of the host
 * take turns writing). Every writing transaction is `BEGIN IMMEDIATE`: it takes
 * the file's write lock first, so two processes never both read, decide and
 * then collide on commit.
 */
export class SqliteDialect implements SqlDialect {
  readonly where: string;
  readonly types = {
    integer: 'INTEGER',
    serialKey: 'INTEGER PRIMARY KEY',
  };
  readonly lockRow = '';

  elements(): string {
    return '(SELECT key AS idx, value FROM json_each(?))';
  }
  private readonly path: string;
  private db?: Database;
  private readonly statements = new Map<string, Statement>();
  /** The transaction running now: the next one waits for it (one connection, one transaction at a time). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    path: string,
    private readonly busyTimeoutMs = SQLITE_BUSY_TIMEOUT_MS,
  ) {
    this.path = resolve(path);
    this.where = `SQLite file ${this.path}`;
  }

  transaction<T>(
    write: boolean,
    work: (tx: SqlTransaction) => Promise<T>,
  ): Promise<T> {
    const next = this.queue.then(() => this.run(write, work));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async run<T>(
    write: boolean,
    work: (tx: SqlTransaction) => Promise<T>,
  ): Promise<T> {
    this.open();
    this.statement(write ? 'BEGIN IMMEDIATE' : 'BEGIN').run();
    try {
      const now = Number((this.statement(NOW).get() as SqlRow).now);
      const result = await work(this.transactionAt(now));
      this.statement('COMMIT').run();
      return result;
    } catch (e) {
      // A failed COMMIT may have ended the transaction already.
      try {
        this.statement('ROLLBACK').run();
      } catch {
        /* nothing open */
      }
      throw e;
    }
  }

  private transactionAt(now: number): SqlTransaction {
    return {
      now,
      all: (sql, params = []) =>
        Promise.resolve(this.statement(sql).all(...params)),
      get: (sql, params = []) =>
        Promise.resolve(this.statement(sql).get(...params)),
      run: (sql, params = []) =>
        Promise.resolve(Number(this.statement(sql).run(...params).changes)),
    };
  }

  private statement(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = (this.db as Database).prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private open(): Database {
    if (this.db) return this.db;
    let DatabaseSync: new (path: string, options: object) => Database;
    try {
      /* eslint-disable-next-line @typescript-eslint/no-require-imports */
      ({ DatabaseSync } = require('node:sqlite'));
    } catch (e) {
      throw new ParallelWorkerConfigError(
        SQLITE_NEEDS_NODE(this.path, process.version),
        { cause: e },
      );
    }
    const db = new DatabaseSync(this.path, {
      timeout: this.busyTimeoutMs,
      enableForeignKeyConstraints: true,
    });
    try {
      // Reads the file's header: a file that is not a database fails here, before anything is written.
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
    } catch (e) {
      db.close();
      throw e;
    }
    this.db = db;
    return db;
  }

  explain(error: unknown): unknown {
    const code = Number((error as { errcode?: unknown })?.errcode) & 0xff;
    const cause = { cause: error };
    const reason = (error as Error)?.message ?? String(error);
    switch (code) {
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
        return new ParallelWorkerConfigError(
          SQLITE_CANNOT_OPEN(this.path, reason),
          cause,
        );
      case SQLITE_NOTADB:
        return new ParallelWorkerConfigError(
          SQLITE_NOT_A_DATABASE(this.path),
          cause,
        );
      case SQLITE_BUSY:
        return new Error(SQLITE_LOCKED(this.path, this.busyTimeoutMs), cause);
      default:
        return error;
    }
  }

  async close(): Promise<void> {
    await this.queue;
    this.statements.clear();
    this.db?.close();
    this.db = undefined;
  }
}
