import { ParallelWorkerConfigError } from '../../errors/parallel-worker-config.error';
import { SQL_SCHEMA_NEWER } from '../../parallel-worker.messages';
import type {
  Claim,
  CommitResult,
  CoordinationStore,
  DeadLetter,
  RunRecord,
  StartRunResult,
  StoreRunState,
} from '../coordination-store.interface';
import type {
  ClaimOptions,
  CommitOptions,
  ControlOptions,
  CountWorkersOptions,
  DeadLettersOptions,
  DeclaredBy,
  RetryDeadOptions,
  EndRunOptions,
  FailOptions,
  HealthTurnOptions,
  HeartbeatOptions,
  HistoryOptions,
  HoldOptions,
  JobStore,
  LeaseTokens,
  LeaveOptions,
  RecordRunOptions,
  SetTotalOptions,
  StartOptions,
  TakePermitsOptions,
} from '../job-store.interface';
import { pageOf } from '../page';
import { refuseOtherApp } from '../declaration';
import type { SqlDialect, SqlTransaction } from './sql-dialect.interface';
import { jobRow, setJob, type JobRow } from './sql.rows';
import { migrate, SCHEMA_VERSION } from './sql.schema';
import {
  checkParts,
  madeAgain,
  recordParts,
  type Scope,
} from './sql-integrity';
import { claimIn, commitIn } from './sql-hand-out';
import {
  completeIn,
  failIn,
  heartbeatIn,
  releaseIn,
  type Elements,
} from './sql-lease-ends';
import { recordRunIn, resetIn, retryDeadIn, startRunIn } from './sql-runs';
import { healthTurnIn, holdIn } from './sql-holds';
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
 * outside. Every writing operation first compares how many rows each part of
 * the job's state holds (leases, retries, dead letters, partitions) with the
 * counts the last one recorded in the job's row (sql-integrity): rows deleted
 * or a table emptied mark the job lost, its run fails "state lost" and
 * run() without `from` is refused until `from` or reset, as in Redis. A job
 * row gone while rows of its run stay is lost the same way (part `job row`);
 * a job row gone with nothing of a run left starts over as a new job. A file
 * restored from an older copy holds an older cursor and leases already
 * completed: those are handled again (duplicates, never gaps), the running
 * host's commit sees the cursor went back, and tokens stay above every one
 * issued before, being floored at store time. A file replaced while a
 * process has it open is not seen by that process (it keeps the file it
 * opened).
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
    /** The parts of the state it checks and records (see sql-integrity): the hot path counts only leases. */
    scope: Scope = 'all',
  ): Promise<T> {
    try {
      await this.prepare();
      return await this.dialect.transaction(true, async (tx) => {
        const row = await this.lockJob(tx, job);
        await checkParts(tx, row, job, scope);
        const result = await work(tx, row);
        await recordParts(tx, row.id, scope);
        return result;
      });
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
      return madeAgain(tx, jobRow(row as Record<string, unknown>), job);
    }
    return jobRow(row);
  }

  async close(): Promise<void> {
    await this.dialect.close();
  }

  private readonly handles = new Map<string, SqlJob>();

  job(name: string): SqlJob {
    let job = this.handles.get(name);
    if (!job) {
      job = new SqlJob(name, this.elements, {
        write: (job, work, scope) => this.write(job, work, scope),
        read: (job, declaredBy, call, work) =>
          this.read(job, declaredBy, call, work),
      });
      this.handles.set(name, job);
    }
    return job;
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

/** The transactions a job's handle runs, on its store's database. */
interface SqlAccess {
  write<T>(
    job: string,
    work: (tx: SqlTransaction, row: JobRow) => Promise<T>,
    scope?: Scope,
  ): Promise<T>;
  read<T>(
    job: string,
    declaredBy: string | undefined,
    call: string,
    work: (tx: SqlTransaction, row: JobRow | undefined) => Promise<T>,
  ): Promise<T>;
}

/** One job of a `SqlStore`: every call is one transaction on the job's rows. */
export class SqlJob implements JobStore {
  constructor(
    private readonly name: string,
    private readonly elements: Elements,
    private readonly access: SqlAccess,
  ) {}

  /** One writing transaction on the job's row (created when missing), locked for the transaction. */
  private write<T>(
    work: (tx: SqlTransaction, row: JobRow) => Promise<T>,
    /** The parts of the state it checks and records (see sql-integrity): the hot path counts only leases. */
    scope?: Scope,
  ): Promise<T> {
    return this.access.write(this.name, work, scope);
  }

  /** One reading transaction, refusing another app's `call` first; `row` is undefined for a job the database does not hold. */
  private read<T>(
    declaredBy: string | undefined,
    call: string,
    work: (tx: SqlTransaction, row: JobRow | undefined) => Promise<T>,
  ): Promise<T> {
    return this.access.read(this.name, declaredBy, call, work);
  }

  async start(options: StartOptions): Promise<StartRunResult> {
    return this.write((tx, s) =>
      startRunIn(tx, s, { job: this.name, ...options }),
    );
  }

  async claim({
    owner,
    leaseMs,
    request,
    loading,
  }: ClaimOptions): Promise<Claim> {
    return this.write((tx, s) =>
      claimIn(tx, s, owner, leaseMs, request, loading),
    );
  }

  async commit(options: CommitOptions): Promise<CommitResult> {
    return this.write(
      (tx, s) => commitIn(tx, s, { job: this.name, ...options }),
      'leases',
    );
  }

  async heartbeat({
    owner,
    tokens,
    leaseMs,
  }: HeartbeatOptions): Promise<number[]> {
    return this.write(
      (tx, s) => heartbeatIn(tx, s, this.elements, owner, tokens, leaseMs),
      'leases',
    );
  }

  async complete({ owner, tokens }: LeaseTokens): Promise<boolean[]> {
    if (tokens.length === 0) return [];
    return this.write(
      (tx, s) => completeIn(tx, s, this.elements, owner, tokens),
      'leases',
    );
  }

  async fail(options: FailOptions): Promise<'retry' | 'dead' | 'stale'> {
    return this.write((tx, s) =>
      failIn(tx, s, options.owner, options.token, options),
    );
  }

  async release({ owner, tokens }: LeaseTokens): Promise<void> {
    if (tokens.length === 0) return;
    await this.write((tx, s) => releaseIn(tx, s, owner, tokens));
  }

  async leave({ owner }: LeaveOptions): Promise<void> {
    await this.write(async (tx, s) => {
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

  async endRun({ runId, state, error }: EndRunOptions): Promise<void> {
    await this.write(async (tx, s) => {
      if (s.runId !== runId || s.state !== 'running') return;
      await setJob(tx, s.id, { state, error: error ?? null, ended_at: tx.now });
    });
  }

  async takePermits({
    wanted,
    perSecond,
  }: TakePermitsOptions): Promise<{ granted: number; waitMs: number }> {
    return this.write(async (tx, s) => {
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

  async control({
    action,
    declaredBy,
  }: ControlOptions): Promise<string | null> {
    return this.write(async (tx, s) => {
      refuseOtherApp(this.name, s.declaredBy, declaredBy, action);
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

  async reset({ declaredBy }: DeclaredBy = {}): Promise<void> {
    await this.write((tx, s) => resetIn(tx, s, this.name, declaredBy));
  }

  async setTotal({ runId, total }: SetTotalOptions): Promise<void> {
    await this.write(async (tx, s) => {
      if (s.runId === runId) await setJob(tx, s.id, { total });
    });
  }

  async countWorkers({
    runId,
    started,
    restarted,
  }: CountWorkersOptions): Promise<void> {
    await this.write(async (tx, s) => {
      if (s.runId === runId)
        await tx.run(
          'UPDATE pw_jobs SET workers_started = workers_started + ?, workers_restarted = workers_restarted + ? WHERE id = ?',
          [started, restarted, s.id],
        );
    });
  }

  async retryDead({
    declaredBy,
    only,
  }: RetryDeadOptions = {}): Promise<number> {
    return this.write((tx, s) =>
      retryDeadIn(tx, s, this.name, declaredBy, only),
    );
  }

  async hold(options: HoldOptions): Promise<void> {
    await this.write((tx, s) => holdIn(tx, s, options));
  }

  async healthTurn(options: HealthTurnOptions): Promise<boolean> {
    return this.write((tx, s) => healthTurnIn(tx, s, options));
  }

  async state({ declaredBy }: DeclaredBy = {}): Promise<StoreRunState> {
    return this.read(declaredBy, 'status', stateOf);
  }

  async deadLetters(options?: DeadLettersOptions): Promise<DeadLetter[]> {
    return this.read(options?.declaredBy, 'deadLetters', (tx, s) =>
      deadLettersOf(tx, s, pageOf(options)),
    );
  }

  async recordRun({ record, keep }: RecordRunOptions): Promise<void> {
    await this.write((tx, s) => recordRunIn(tx, s, record, keep));
  }

  async history({ limit, declaredBy }: HistoryOptions): Promise<RunRecord[]> {
    return this.read(declaredBy, 'history', (tx, s) => historyOf(tx, s, limit));
  }

  async leasesByOwner({ declaredBy }: DeclaredBy = {}): Promise<
    Record<string, number>
  > {
    return this.read(declaredBy, 'leasesByHost', leasesByOwnerOf);
  }
}
