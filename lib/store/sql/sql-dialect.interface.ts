/** A value a statement takes or a row holds: SQL text, numbers (integers below 2^53), or NULL. */
export type SqlValue = string | number | null;

export type SqlRow = Record<string, unknown>;

/**
 * One transaction of the SQL store. Statements use `?` placeholders; a dialect
 * whose database numbers them (`$1`) rewrites them. Integers may come back as
 * text (PostgreSQL's bigint): the store reads them through `Number()`.
 */
export interface SqlTransaction {
  /**
   * Store time in ms for this call, one clock for every process that uses
   * the database: the database server's, or for a file every process reaches
   * on one host (SQLite), that host's (the clock SQLite's own 'now' reads).
   */
  readonly now: number;
  all(sql: string, params?: SqlValue[]): Promise<SqlRow[]>;
  get(sql: string, params?: SqlValue[]): Promise<SqlRow | undefined>;
  /** Runs a statement; returns how many rows it changed. */
  run(sql: string, params?: SqlValue[]): Promise<number>;
}

/**
 * What differs between the databases the SQL store runs on. The store's
 * statements are plain SQL both SQLite and PostgreSQL accept (`ON CONFLICT`,
 * `RETURNING`, `LIMIT … OFFSET`); the dialect opens the connection, owns
 * transactions and time, and names the column types of the schema.
 */
export interface SqlDialect {
  /** Where the state lives, without credentials (`SQLite file /path/state.db`). */
  readonly where: string;
  /**
   * Column types: a 64-bit integer, and an integer key the database numbers
   * itself; `keyed`: what ends a table stored in its primary key's order (no
   * separate row id to keep in step: SQLite's WITHOUT ROWID).
   */
  readonly types: { integer: string; serialKey: string; keyed: string };
  /**
   * Appended to the read of the job's row that begins every writing
   * transaction: PostgreSQL's `FOR UPDATE` (one writer per job); empty in
   * SQLite, whose `BEGIN IMMEDIATE` already has the only write lock.
   */
  readonly lockRow: string;
  /**
   * A subquery over the elements of a JSON array passed as one parameter
   * (`?`), with columns `idx` (from 0) and `value` (an integer, or the text of
   * a string element exactly as sent), so a call on thousands of leases is
   * one statement: SQLite's `json_each`, PostgreSQL's
   * `jsonb_array_elements_text … WITH ORDINALITY`.
   */
  elements(type: 'integer' | 'text'): string;
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back
   * when it throws. `write: false` only reads (a snapshot; no write lock).
   * Transactions of one store instance run one after the other; a dialect
   * may commit several at once (each rolled back alone when it throws), and
   * answers each only once its changes are committed.
   */
  transaction<T>(
    write: boolean,
    work: (tx: SqlTransaction) => Promise<T>,
  ): Promise<T>;
  /**
   * Turns a driver error into one that says what to do, when it is about the
   * database itself (cannot open it, not a database, read-only, locked);
   * returns it unchanged otherwise.
   */
  explain(error: unknown): unknown;
  /** The last reason the database could not be used (a lock held past the busy timeout), for the start-up error. */
  problem?(): string | undefined;
  close(): Promise<void>;
}
