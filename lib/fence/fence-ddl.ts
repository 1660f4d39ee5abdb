import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error';
import { show } from '../parallel-worker.messages';

/** The SQL databases `ctx.fence()` writes its fence rows to. */
export type FenceDialect = 'postgres' | 'mysql' | 'sqlite';

export const FENCE_DIALECTS: readonly FenceDialect[] = [
  'postgres',
  'mysql',
  'sqlite',
];

/** The fence table's name when the `fence` option names none. */
export const DEFAULT_FENCE_TABLE = 'parallel_worker_fence';

/** A table name, optionally schema-qualified, that needs no quoting in any of the dialects. */
const TABLE_NAME =
  /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/;

/** Longest job name the fence table holds (its `job` column). */
export const FENCE_JOB_MAX = 255;

/** Why `table` cannot name the fence table, or undefined when it can. */
export function fenceTableProblem(table: unknown): string | undefined {
  if (typeof table === 'string' && TABLE_NAME.test(table)) return undefined;
  return `a table name of letters, digits and _ (optionally schema.table, at most 63 characters each), got ${show(table)}`;
}

/**
 * The fence table's `CREATE TABLE IF NOT EXISTS` statement for `dialect`: run
 * it once, as a migration or a start-up step, outside any transaction (MySQL
 * commits DDL implicitly). One small row per range of a run: the range's key
 * (a hash of the job, the run that loaded it, the cursor before it and its ids), its first id and size for people
 * reading the table, the fencing token and the time of the attempt that
 * committed it. `ctx.fence()` deletes rows of other runs a week after they were
 * written, a few hundred at a time, so the table stays bounded.
 */
export function fenceDdl(
  dialect: FenceDialect,
  table: string = DEFAULT_FENCE_TABLE,
): string {
  if (!FENCE_DIALECTS.includes(dialect))
    throw new ParallelWorkerConfigError(
      `fenceDdl(): dialect must be one of ${FENCE_DIALECTS.map((d) => `'${d}'`).join(', ')}, got ${show(dialect)}.`,
    );
  const problem = fenceTableProblem(table);
  if (problem)
    throw new ParallelWorkerConfigError(
      `fenceDdl(): table must be ${problem}.`,
    );
  const columns = `(
  job VARCHAR(${FENCE_JOB_MAX}) NOT NULL,
  run_id VARCHAR(64) NOT NULL,
  range_key CHAR(32) NOT NULL,
  first_id VARCHAR(255) NOT NULL,
  ids INTEGER NOT NULL,
  token BIGINT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (job, run_id, range_key)
)`;
  return `CREATE TABLE IF NOT EXISTS ${table} ${columns}${dialect === 'mysql' ? ' ENGINE=InnoDB' : ''}`;
}

/** How many rows of ended runs one prune deletes at most. */
export const FENCE_PRUNE_ROWS = 500;

/**
 * The statements `ctx.fence()` runs, with `?` placeholders (numbered for
 * PostgreSQL by the caller). A prune must not wait for another open fence
 * transaction (a range whose transaction is open must never hold up another
 * range), so it deletes only rows it could lock at once:
 * - PostgreSQL: `FOR UPDATE SKIP LOCKED` picks the rows; SQLite has one
 *   writer and nothing to skip.
 * - MySQL/MariaDB: a locking `DELETE … WHERE job = ? AND at < ?` would lock
 *   every row of the job it scans under REPEATABLE READ, fresh rows of other
 *   open transactions included, and wait for them (measured on MariaDB 10.11:
 *   another range's fence waited for the pruning transaction to end, and two
 *   pruning transactions deadlock). So a plain (non-locking) read finds the
 *   candidates, `pruneLock` locks each by its whole key with `SKIP LOCKED`
 *   (MySQL 8.0, MariaDB 10.6 and later), and `pruneKey` deletes it when it
 *   was locked.
 */
export function fenceStatements(
  dialect: FenceDialect,
  table: string,
): {
  insert: string;
  /** MySQL: the candidates' SELECT; the others: the whole prune. */
  prune: string;
  pruneLock: string;
  pruneKey: string;
} {
  const cols = '(job, run_id, range_key, first_id, ids, token, at)';
  const values = 'VALUES (?, ?, ?, ?, ?, ?, ?)';
  // One whole key at a time: an IN list is a scan of the run's rows to InnoDB, with next-key locks that hold up
  // inserts of other ranges (measured); an equality on the whole primary key locks that row alone.
  const key = 'job = ? AND run_id = ? AND range_key = ?';
  const pruneLock = `SELECT range_key FROM ${table} WHERE ${key} FOR UPDATE SKIP LOCKED`;
  const pruneKey = `DELETE FROM ${table} WHERE ${key}`;
  const candidates = `SELECT job, run_id, range_key FROM ${table} WHERE job = ? AND run_id <> ? AND at < ? LIMIT ${FENCE_PRUNE_ROWS}`;
  // PostgreSQL: only under READ COMMITTED (its default); under REPEATABLE READ or SERIALIZABLE a prune racing
  // another would abort the handler's transaction with a serialization failure.
  const prune =
    dialect === 'postgres'
      ? `DELETE FROM ${table} WHERE current_setting('transaction_isolation') = 'read committed' AND (job, run_id, range_key) IN (${candidates} FOR UPDATE SKIP LOCKED)`
      : `DELETE FROM ${table} WHERE (job, run_id, range_key) IN (${candidates})`;
  if (dialect === 'mysql')
    return {
      // IGNORE: a row already there (committed, or waited for until its transaction committed) changes nothing.
      insert: `INSERT IGNORE INTO ${table} ${cols} ${values}`,
      prune: candidates,
      pruneLock,
      pruneKey,
    };
  return {
    insert: `INSERT INTO ${table} ${cols} ${values} ON CONFLICT DO NOTHING`,
    prune,
    pruneLock,
    pruneKey,
  };
}
