import type { ID } from '../../interfaces/range.interface';
import { ParallelWorkerConfigError } from '../../errors/parallel-worker-config.error';
import { SQL_SCHEMA_NEWER } from '../../parallel-worker.messages';
import type {
  Claim,
  CommitResult,
  CoordinationStore,
  DeadLetter,
  FailOptions,
  PartitionBounds,
  RunRecord,
  RunStart,
  StartRunResult,
  StoreRunState,
  StoredRange,
} from '../coordination-store.interface';
import { refuseOtherApp } from '../declaration';
import type { SqlDialect, SqlTransaction } from './sql-dialect.interface';
import { jobRow, setJob, type JobRow } from './sql.rows';
import { migrate, SCHEMA_VERSION } from './sql.schema';
import { claimIn, commitIn } from './sql-hand-out';
import {
  completeIn,
  failIn,
  heartbeatIn,
  releaseIn,
  type Elements,
} from './sql-lease-ends';
import {
  recordRunIn,
  resetIn,
  retryDeadIn,
  RUN_TABLES,
  startRunIn,
} from './sql-runs';
import {
  deadLettersOf,
  historyOf,
  leasesByOwnerOf,
  stateOf,
} from './sql-views';

/**
 * Coordination in a SQL database: a SQLite file every process of a host
 * shares (`SqliteDialect`), and the same tables and statements on another
 * database through its dialect. Every operation is one transaction that
 * first takes the job's write lock, with time read from the database once;
 * cursors move by compare-and-set against the row read under that lock;
 * fencing tokens come from the job's counter, never below store time in ms x
 * 1000, so they only go up across processes and restores. Semantics are
 * MemoryStore's (the contract suite holds all stores to them).
 *
 * State lost in part: each operation is one transaction, so a crash never
 * leaves half of one behind; what remains is a file edited or restored from
 * outside. A job row gone while rows of its run stay: the job starts over as
 * new (idle, no run), its leftover rows are dropped when its row is made
 * again, and a host of the old run sees another run id (none) and fails
 * "state lost", never done; the next run starts from the first row, so ids
 * are handled again, never skipped. A file restored from an older copy holds
 * an older cursor and leases already completed: those are handled again
 * (duplicates, never gaps), the running host's commit sees the cursor went
 * back, and tokens stay above every one issued before, being floored at store
 * time.
 */
export class SqlStore implements CoordinationStore {
  readonly where: string;

  /** Why the database could not be used lately, when the dialect knows (the module's start-up error names it). */
  problem(): string | undefined {
    return this.dialect.problem?.();
  }
  private ready?: Promise<void>;
  private readonly elements: Elements;

  /** `space`: the `storageKey`; two apps with different ones keep different jobs in one database. */
  constructor(
    private readonly dialect: SqlDialect,
    private readonly space = 'parallel-worker',
  ) {
    this.where = dialect.where;
    this.elements = {
      integer: dialect.elements('integer'),
      text: dialect.elements('text'),
    };
  }

  /** Opens the database and brings its tables up to date, once (again after a failure, such as a lock). */
  private prepare(): Promise<void> {
    this.ready ??= this.dialect
      .transaction(true, async (tx) => {
        const { found } = await migrate(tx, this.dialect.types);
        if (found > SCHEMA_VERSION)
          throw new ParallelWorkerConfigError(
            SQL_SCHEMA_NEWER(this.where, found, SCHEMA_VERSION),
          );
      })
      .catch((e) => {
        this.ready = undefined;
        throw e;
      });
    return this.ready;
  }

  /** One writing transaction on the job's row (created when missing), locked for the transaction. */
  private async write<T>(
    job: string,
    work: (tx: SqlTransaction, row: JobRow) => Promise<T>,
  ): Promise<T> {
    try {
      await this.prepare();
      return await this.dialect.transaction(true, async (tx) =>
        work(tx, await this.lockJob(tx, job)),
      );
    } catch (e) {
      throw this.dialect.explain(e);
    }
  }

  /**
   * One reading transaction; `row` is undefined for a job the database does
   * not hold. Refuses another app's call (`call`: its public name) first.
   */
  private async read<T>(
    job: string,
    declaredBy: string | undefined,
    call: string,
    work: (tx: SqlTransaction, row: JobRow | undefined) => Promise<T>,
  ): Promise<T> {
    try {
      await this.prepare();
      return await this.dialect.transaction(false, async (tx) => {
        const row = await tx.get(
          'SELECT * FROM pw_jobs WHERE space = ? AND name = ?',
          [this.space, job],
        );
        const s = row ? jobRow(row) : undefined;
        refuseOtherApp(job, s?.declaredBy, declaredBy, call);
        return work(tx, s);
      });
    } catch (e) {
      throw this.dialect.explain(e);
    }
  }

  private async lockJob(tx: SqlTransaction, job: string): Promise<JobRow> {
    const select = `SELECT * FROM pw_jobs WHERE space = ? AND name = ?${this.dialect.lockRow}`;
    let row = await tx.get(select, [this.space, job]);
    if (!row) {
      await tx.run(
        'INSERT INTO pw_jobs (space, name) VALUES (?, ?) ON CONFLICT (space, name) DO NOTHING',
        [this.space, job],
      );
      row = await tx.get(select, [this.space, job]);
      // Rows left by a job row deleted from outside, under an id the database gave again: never the new job's.
      const id = Number((row as Record<string, unknown>).id);
      for (const table of [...RUN_TABLES, 'pw_dead_letters', 'pw_history'])
        await tx.run(`DELETE FROM ${table} WHERE job_id = ?`, [id]);
    }
    return jobRow(row as Record<string, unknown>);
  }

  async close(): Promise<void> {
    await this.dialect.close();
  }

  async startRun(
    job: string,
    runId: string,
    from?: ID | null,
    declaredBy?: string,
    partitions?: PartitionBounds[],
    start?: RunStart,
    plannedFrom?: ID | null,
  ): Promise<StartRunResult> {
    return this.write(job, (tx, s) =>
      startRunIn(tx, s, {
        job,
        runId,
        from,
        declaredBy,
        partitions,
        start,
        plannedFrom,
      }),
    );
  }

  async claim(
    job: string,
    owner: string,
    leaseMs: number,
    request?: string,
    loading?: number[],
  ): Promise<Claim> {
    return this.write(job, (tx, s) =>
      claimIn(tx, s, owner, leaseMs, request, loading),
    );
  }

  async commit(
    job: string,
    owner: string,
    expected: ID | null,
    ranges: StoredRange[],
    leaseMs: number,
    request?: string,
    partition?: number,
  ): Promise<CommitResult> {
    return this.write(job, (tx, s) =>
      commitIn(tx, s, this.elements, {
        job,
        owner,
        expected,
        ranges,
        leaseMs,
        request,
        partition,
      }),
    );
  }

  async heartbeat(
    job: string,
    owner: string,
    tokens: number[],
    leaseMs: number,
  ): Promise<number[]> {
    return this.write(job, (tx, s) =>
      heartbeatIn(tx, s, this.elements, owner, tokens, leaseMs),
    );
  }

  async complete(
    job: string,
    owner: string,
    tokens: number[],
  ): Promise<boolean[]> {
    if (tokens.length === 0) return [];
    return this.write(job, (tx, s) =>
      completeIn(tx, s, this.elements, owner, tokens),
    );
  }

  async fail(
    job: string,
    owner: string,
    token: number,
    options: FailOptions,
  ): Promise<'retry' | 'dead' | 'stale'> {
    return this.write(job, (tx, s) => failIn(tx, s, owner, token, options));
  }

  async release(job: string, owner: string, tokens: number[]): Promise<void> {
    if (tokens.length === 0) return;
    await this.write(job, (tx, s) => releaseIn(tx, s, owner, tokens));
  }

  async leave(job: string, owner: string): Promise<void> {
    await this.write(job, async (tx, s) => {
      await tx.run('DELETE FROM pw_hosts WHERE job_id = ? AND owner = ?', [
        s.id,
        owner,
      ]);
      await tx.run(
        'UPDATE pw_partitions SET loader = NULL, loader_until = NULL WHERE job_id = ? AND loader = ?',
        [s.id, owner],
      );
      await tx.run('DELETE FROM pw_replies WHERE job_id = ? AND owner = ?', [
        s.id,
        owner,
      ]);
    });
  }

  async endRun(
    job: string,
    runId: string,
    state: 'completed' | 'failed',
    error?: string,
  ): Promise<void> {
    await this.write(job, async (tx, s) => {
      if (s.runId !== runId || s.state !== 'running') return;
      await setJob(tx, s.id, { state, error: error ?? null, ended_at: tx.now });
    });
  }

  async takePermits(
    job: string,
    wanted: number,
    perSecond: number,
  ): Promise<{ granted: number; waitMs: number }> {
    return this.write(job, async (tx, s) => {
      const second = Math.floor(tx.now / 1000);
      const used = s.permitSecond === second ? s.permitUsed : 0;
      const granted = Math.max(0, Math.min(wanted, perSecond - used));
      await setJob(tx, s.id, {
        permit_second: second,
        permit_used: used + granted,
      });
      return { granted, waitMs: granted ? 0 : 1000 - (tx.now % 1000) };
    });
  }

  async control(
    job: string,
    action: 'pause' | 'resume' | 'cancel',
    declaredBy?: string,
  ): Promise<string | null> {
    return this.write(job, async (tx, s) => {
      refuseOtherApp(job, s.declaredBy, declaredBy, action);
      if (s.state !== 'running') return null;
      await setJob(
        tx,
        s.id,
        action === 'cancel'
          ? { state: 'stopped', control: 'run', ended_at: tx.now }
          : { control: action === 'pause' ? 'pause' : 'run' },
      );
      return s.runId;
    });
  }

  async reset(job: string, declaredBy?: string): Promise<void> {
    await this.write(job, (tx, s) => resetIn(tx, s, job, declaredBy));
  }

  async setTotal(job: string, runId: string, total: number): Promise<void> {
    await this.write(job, async (tx, s) => {
      if (s.runId === runId) await setJob(tx, s.id, { total });
    });
  }

  async countWorkers(
    job: string,
    runId: string,
    started: number,
    restarted: number,
  ): Promise<void> {
    await this.write(job, async (tx, s) => {
      if (s.runId === runId)
        await tx.run(
          'UPDATE pw_jobs SET workers_started = workers_started + ?, workers_restarted = workers_restarted + ? WHERE id = ?',
          [started, restarted, s.id],
        );
    });
  }

  async retryDead(job: string, declaredBy?: string): Promise<number> {
    return this.write(job, (tx, s) => retryDeadIn(tx, s, job, declaredBy));
  }

  async state(job: string, declaredBy?: string): Promise<StoreRunState> {
    return this.read(job, declaredBy, 'status', stateOf);
  }

  async deadLetters(
    job: string,
    page?: { offset: number; limit: number },
    declaredBy?: string,
  ): Promise<DeadLetter[]> {
    return this.read(job, declaredBy, 'deadLetters', (tx, s) =>
      deadLettersOf(tx, s, page),
    );
  }

  async recordRun(job: string, record: RunRecord, keep: number): Promise<void> {
    await this.write(job, (tx, s) => recordRunIn(tx, s, record, keep));
  }

  async history(
    job: string,
    limit: number,
    declaredBy?: string,
  ): Promise<RunRecord[]> {
    return this.read(job, declaredBy, 'history', (tx, s) =>
      historyOf(tx, s, limit),
    );
  }

  async leasesByOwner(
    job: string,
    declaredBy?: string,
  ): Promise<Record<string, number>> {
    return this.read(job, declaredBy, 'leasesByHost', leasesByOwnerOf);
  }

  /** Jobs that have state under this `storageKey` (the CLI lists them when asked for an unknown one). */
  async jobs(): Promise<string[]> {
    try {
      await this.prepare();
      return await this.dialect.transaction(false, async (tx) =>
        (
          await tx.all(
            'SELECT name FROM pw_jobs WHERE space = ? ORDER BY name',
            [this.space],
          )
        ).map((r) => String(r.name)),
      );
    } catch (e) {
      throw this.dialect.explain(e);
    }
  }
}
