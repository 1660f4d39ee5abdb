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

/**
 * WAL pages between checkpoints (SQLite's default is 1000). A checkpoint
 * syncs the file and copies each page once, however often it changed since:
 * the store rewrites the same few pages (the job's row, the lease index) at
 * every call, so fewer checkpoints write and sync far less; measured on the
 * no-op bench, COMMIT time fell by about half at 4000. A process crash loses
 * nothing either way; a power cut may lose the transactions since the last
 * checkpoint (up to 16 MB of WAL), never corrupt the file.
 */
const WAL_CHECKPOINT_PAGES = 4000;

/** The most calls one transaction takes, so one group never holds the file's write lock for long. */
const GROUP_CALLS = 64;

/** A store call waiting for the connection. */
interface Call {
  write: boolean;
  work: (tx: SqlTransaction) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

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
    keyed: ' WITHOUT ROWID',
  };
  readonly lockRow = '';

  elements(): string {
    return '(SELECT key AS idx, value FROM json_each(?))';
  }
  private readonly path: string;
  private db?: Database;
  private readonly statements = new Map<string, Statement>();
  /** Calls waiting for the connection, in order; the next group runs them. */
  private waiting: Call[] = [];
  /** Runs the waiting groups, one after the other, until none is left; undefined when idle. */
  private draining?: Promise<void>;

  /** `clock`: store time in ms; the host's clock (a test may move it). */
  /** `byDefault`: the module's default store (no `storage` option), as its errors say. */
  constructor(
    path: string,
    private readonly busyTimeoutMs = SQLITE_BUSY_TIMEOUT_MS,
    private readonly clock: () => number = Date.now,
    private readonly byDefault = false,
  ) {
    this.path = resolve(path);
    this.where = `SQLite file ${this.path}`;
  }

  transaction<T>(
    write: boolean,
    work: (tx: SqlTransaction) => Promise<T>,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({
        write,
        work,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      this.draining ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        // Waits for the event loop's turn to end, so calls made in it (a lane's pipelined commits, a turn's
        // completions) join the group: one transaction's commit and pages for them all.
        await new Promise<void>((resolve) => setImmediate(resolve));
        await this.group(this.waiting.splice(0, GROUP_CALLS));
      }
    } finally {
      // In the same step as the last look at `waiting`: a call added after it starts a new drain.
      this.draining = undefined;
    }
  }

  /**
   * Runs calls in one SQLite transaction, each in a savepoint of its own (one
   * call that throws is rolled back alone and rejects at once), and answers
   * the others only once COMMIT returned: as durable as a transaction each,
   * for one commit's cost. Read-only groups take no write lock.
   */
  private async group(calls: Call[]): Promise<void> {
    const answers: (() => void)[] = [];
    try {
      this.open();
      this.statement(
        calls.some((c) => c.write) ? 'BEGIN IMMEDIATE' : 'BEGIN',
      ).run();
    } catch (e) {
      for (const call of calls) call.reject(e);
      return;
    }
    let index = 0;
    // A call alone needs no savepoint: when it throws, the whole transaction is rolled back.
    const alone = calls.length === 1;
    try {
      for (; index < calls.length; index++) {
        const call = calls[index];
        if (!alone) this.statement('SAVEPOINT pw_call').run();
        try {
          const value = await call.work(this.transactionAt(this.clock()));
          if (!alone) this.statement('RELEASE pw_call').run();
          answers.push(() => call.resolve(value));
        } catch (e) {
          if (alone) throw e;
          // Fails (and fails the group) when the error already ended the transaction.
          this.statement('ROLLBACK TO pw_call').run();
          this.statement('RELEASE pw_call').run();
          call.reject(e);
        }
      }
      this.statement('COMMIT').run();
      // The database works again: a lock that held it up before is no longer the problem.
      this.lastProblem = undefined;
    } catch (e) {
      try {
        this.statement('ROLLBACK').run();
      } catch {
        /* nothing open */
      }
      // Nothing of the group was written: every call not answered yet fails.
      for (const call of calls.slice(index)) call.reject(e);
      for (const call of calls.slice(0, index)) call.reject(e);
      return;
    }
    for (const answer of answers) answer();
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
        SQLITE_NEEDS_NODE(this.path, process.version, this.byDefault),
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
      db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    } catch (e) {
      db.close();
      throw e;
    }
    this.db = db;
    return db;
  }

  private lastProblem?: string;

  problem(): string | undefined {
    return this.lastProblem;
  }

  explain(error: unknown): unknown {
    const code = Number((error as { errcode?: unknown })?.errcode) & 0xff;
    const cause = { cause: error };
    const reason = (error as Error)?.message ?? String(error);
    switch (code) {
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
        return new ParallelWorkerConfigError(
          SQLITE_CANNOT_OPEN(this.path, reason, this.byDefault),
          cause,
        );
      case SQLITE_NOTADB:
        return new ParallelWorkerConfigError(
          SQLITE_NOT_A_DATABASE(this.path, this.byDefault),
          cause,
        );
      case SQLITE_BUSY:
        this.lastProblem = SQLITE_LOCKED(this.path, this.busyTimeoutMs);
        return new Error(this.lastProblem, cause);
      default:
        return error;
    }
  }

  async close(): Promise<void> {
    while (this.draining) await this.draining;
    this.statements.clear();
    this.db?.close();
    this.db = undefined;
  }
}
