/**
 * The little the samples need from a SQL database, so the same job runs on
 * SQLite (zero setup) and on PostgreSQL (set `DATABASE_URL`).
 *
 * SQL is written with `?` placeholders in the subset both dialects share;
 * the PostgreSQL implementation numbers them (`$1`, `$2`, ...).
 * The class doubles as the injection token.
 */
export abstract class Db {
  /** Runs a query and returns its rows. */
  abstract query<T>(sql: string, params?: unknown[]): Promise<T[]>;

  /** Runs a statement and returns how many rows it changed. */
  abstract execute(sql: string, params?: unknown[]): Promise<number>;

  /** Where the data lives, for log lines (never includes a password). */
  abstract readonly description: string;
}

/** `?, ?, ?` for an `IN (...)` list of `count` values. */
export function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}
