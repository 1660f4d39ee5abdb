import { createHash } from 'node:crypto';
import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error';
import type { ID } from '../interfaces/range.interface';
import {
  fenceDdl,
  fenceStatements,
  FENCE_JOB_MAX,
  type FenceDialect,
} from './fence-ddl';
import {
  NoRowCount,
  fenceConnection,
  type FenceCallOptions,
  type FenceConnection,
  type FenceTransaction,
} from './fence-transaction';

/**
 * How long rows of other runs stay before a prune may delete them: a week, so
 * a zombie attempt of an ended run, or a range a later run hands out again
 * (after a cancel, `retryDead`), still meets its row.
 */
export const FENCE_KEEP_MS = 7 * 24 * 60 * 60 * 1000;
/** Every how many fence calls of a process one prunes (and the first of each run). */
const PRUNE_EVERY = 256;

/** `ctx.fence`: see RangeContext. */
export type Fence = (
  tx: FenceTransaction,
  options?: FenceCallOptions,
) => Promise<boolean>;

/** What identifies a range: the run that loaded it, the cursor before it and its ids. */
export interface FencedRange {
  ids: ID[];
  prev: ID | null;
  /** The run that loaded it, when another than the current one. */
  run?: string;
  token: number;
}

/**
 * A range's identity for the fence: the same however often and in whichever
 * run it is handed out; a failed-ids sub-range has its own (other ids). The
 * cursor before it tells apart ranges of a loader that returns no ids.
 */
export function fenceKey(
  job: string,
  runId: string,
  prev: ID | null,
  ids: ID[],
): string {
  return createHash('sha256')
    .update(JSON.stringify([job, runId, prev, ids]))
    .digest('hex')
    .slice(0, 32);
}

/** Driver errors that mean the fence table is not there. */
function missingTable(e: unknown): boolean {
  const errors = [e, (e as { driverError?: unknown })?.driverError];
  return errors.some((x) => {
    const err = x as { code?: unknown; errno?: unknown; message?: unknown };
    return (
      err?.code === '42P01' ||
      err?.code === 'ER_NO_SUCH_TABLE' ||
      err?.errno === 1146 ||
      (typeof err?.message === 'string' && /no such table/i.test(err.message))
    );
  });
}

/**
 * The fence of one run's ranges in one process: gives each range its
 * `ctx.fence`, and now and then deletes a few rows of the job's other runs.
 */
export class RangeFence {
  private calls = 0;

  constructor(
    private readonly job: string,
    private readonly runId: string,
    private readonly table: string,
  ) {}

  /** `ctx.fence` for one attempt at a range. */
  forRange(range: FencedRange): Fence {
    let applied = false;
    return async (tx, options) => {
      const outcome = await this.fence(tx, options, range, applied);
      if (outcome) applied = true;
      return outcome;
    };
  }

  private async fence(
    tx: FenceTransaction,
    options: FenceCallOptions | undefined,
    range: FencedRange,
    appliedBefore: boolean,
  ): Promise<boolean> {
    const { job, table } = this;
    const { ids, prev, token } = range;
    const run = range.run ?? this.runId;
    const conn = fenceConnection(tx, options);
    if ('unusable' in conn)
      throw new ParallelWorkerConfigError(
        `Job "${job}": ctx.fence() cannot use ${conn.unusable}. Pass the transaction the handler writes the range's effects in: a node-postgres client inside BEGIN, a mysql2 connection inside beginTransaction(), a better-sqlite3 or node:sqlite database inside a transaction, a Knex transaction, a TypeORM EntityManager or QueryRunner of a transaction, or a function (sql, params) => rows changed with { dialect }.`,
      );
    if (job.length > FENCE_JOB_MAX)
      throw new ParallelWorkerConfigError(
        `Job "${job.slice(0, 40)}…": ctx.fence() keeps job names of up to ${FENCE_JOB_MAX} characters; this one has ${job.length}. Give the job a shorter name.`,
      );
    if ((await conn.inTransaction()) === false)
      throw new ParallelWorkerConfigError(
        `Job "${job}": ctx.fence() was given ${conn.kind} that is not inside a transaction: the fence row would commit on its own, apart from the range's effects. Call it inside the transaction that writes them.`,
      );
    const statements = fenceStatements(conn.dialect, table);
    let inserted: number;
    try {
      inserted = await conn.run(statements.insert, [
        job,
        run,
        fenceKey(job, run, prev, ids),
        (ids.length > 0 ? String(ids[0]) : `after ${String(prev)}`).slice(
          0,
          255,
        ),
        ids.length,
        token,
        Date.now(),
      ]);
    } catch (e) {
      if (e instanceof NoRowCount)
        throw new ParallelWorkerConfigError(
          `Job "${job}": ctx.fence() cannot tell whether its row was written: ${conn.kind} ${e.message}${conn.kind === 'a query function' ? '; the function must resolve the number of rows the statement changed' : ''}.`,
        );
      if (missingTable(e))
        throw new ParallelWorkerConfigError(
          `Job "${job}": ctx.fence() found no table ${table} in this ${name(conn.dialect)} database. Create it once, outside any transaction (a migration or a start-up step): ${fenceDdl(conn.dialect, table).replace(/\s+/g, ' ')}`,
          { cause: e },
        );
      throw e;
    }
    if (inserted === 0 && appliedBefore)
      throw new ParallelWorkerConfigError(
        `Job "${job}": ctx.fence() was called again for a range whose earlier call in this attempt committed: call it once per range, in the one transaction that writes all of the range's effects.`,
      );
    if (inserted > 0 && this.calls++ % PRUNE_EVERY === 0)
      await this.prune(conn, statements);
    return inserted > 0;
  }

  /** Deletes up to FENCE_PRUNE_ROWS old rows of the job's other runs, skipping rows another transaction holds (see fenceStatements). */
  private async prune(
    conn: FenceConnection,
    statements: ReturnType<typeof fenceStatements>,
  ): Promise<void> {
    const { job, runId } = this;
    const params = [job, runId, Date.now() - FENCE_KEEP_MS];
    // On MySQL a function's prune could only be a locking DELETE, which waits for other open fence transactions
    // (and may deadlock with another prune): it does not prune; see the docs for a prune of your own.
    if (conn.dialect === 'mysql' && !conn.select) return;
    if (conn.dialect !== 'mysql') {
      await conn.run(statements.prune, params);
      return;
    }
    const select = conn.select as NonNullable<FenceConnection['select']>;
    for (const row of await select(statements.prune, params)) {
      const key = [job, String(row.run_id), String(row.range_key)];
      if ((await select(statements.pruneLock, key)).length > 0)
        await conn.run(statements.pruneKey, key);
    }
  }
}

const name = (d: FenceDialect): string =>
  d === 'postgres' ? 'PostgreSQL' : d === 'mysql' ? 'MySQL/MariaDB' : 'SQLite';
