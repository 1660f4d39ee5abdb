import type { ID } from '../../interfaces/range.interface';
import { ParallelWorkerConfigError } from '../../errors/parallel-worker-config.error';
import { RunRefusedError } from '../../errors/run-refused.error';
import {
  JOB_DECLARED_ELSEWHERE,
  RESET_BUSY,
  RUN_BUSY,
  SQL_SCHEMA_NEWER,
} from '../../parallel-worker.messages';
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
import type {
  SqlDialect,
  SqlTransaction,
  SqlValue,
} from './sql-dialect.interface';
import { jobRow, setJob, ZERO_COUNTERS, type JobRow } from './sql.rows';
import { migrate, SCHEMA_VERSION } from './sql.schema';
import { active, addPending, present, take } from './sql-leases';
import { claimIn, commitIn } from './sql-hand-out';
import {
  deadLettersOf,
  historyOf,
  leasesByOwnerOf,
  replaces,
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
  private ready?: Promise<void>;
  private readonly elements: { integer: string; text: string };

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
    return this.write(job, async (tx, s) => {
      if (
        declaredBy &&
        s.declaredBy &&
        s.declaredBy !== declaredBy &&
        from === undefined
      )
        throw new RunRefusedError(
          job,
          JOB_DECLARED_ELSEWHERE(job, s.declaredBy, declaredBy),
        );
      if (s.state === 'running' && s.runId) {
        if (from === undefined)
          return {
            runId: s.runId,
            joined: true,
            ...(s.params !== null && { params: s.params }),
          };
        if (await active(tx, s.id))
          throw new RunRefusedError(job, RUN_BUSY(s.runId));
      }
      // A plan is stored only against the cursor it was clipped at: a reset since then would have it skip ids.
      if (
        from === undefined &&
        plannedFrom !== undefined &&
        s.partitions === 0 &&
        (!partitions?.length || s.cursor !== JSON.stringify(plannedFrom))
      )
        return { replanFrom: JSON.parse(s.cursor) as ID | null };
      const columns: Record<string, SqlValue> = {};
      if (declaredBy) columns.declared_by = declaredBy;
      if (from !== undefined) {
        columns.cursor = JSON.stringify(from);
        if (from === null)
          await tx.run('DELETE FROM pw_pending WHERE job_id = ?', [s.id]);
        await tx.run('DELETE FROM pw_partitions WHERE job_id = ?', [s.id]);
        columns.partitions = await this.storePartitions(tx, s.id, partitions);
      } else if (s.partitions > 0)
        // Kept from the last run: every partition is loaded again from its cursor (new rows only), by no one yet.
        await tx.run(
          'UPDATE pw_partitions SET exhausted = 0, ids = 0, loader = NULL, loader_until = NULL WHERE job_id = ?',
          [s.id],
        );
      else
        columns.partitions = await this.storePartitions(tx, s.id, partitions);
      await tx.run('DELETE FROM pw_replies WHERE job_id = ?', [s.id]);
      await setJob(tx, s.id, {
        ...columns,
        ...ZERO_COUNTERS,
        run_id: runId,
        state: 'running',
        control: 'run',
        total: null,
        error: null,
        exhausted: 0,
        started_at: tx.now,
        ended_at: null,
        params: start?.params ?? null,
        started_by: start?.startedBy ?? null,
        started_on: start?.host ?? null,
      });
      return { runId, joined: false };
    });
  }

  /** Stores the partitions, each cursor at its start (bounds kept as the JSON sent); returns how many. */
  private async storePartitions(
    tx: SqlTransaction,
    jobId: number,
    partitions: PartitionBounds[] | undefined,
  ): Promise<number> {
    for (const [idx, { after, upTo }] of (partitions ?? []).entries()) {
      const start = JSON.stringify(after ?? null);
      await tx.run(
        'INSERT INTO pw_partitions (job_id, idx, after, up_to, cursor) VALUES (?, ?, ?, ?, ?)',
        [jobId, idx, start, JSON.stringify(upTo ?? null), start],
      );
    }
    return partitions?.length ?? 0;
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
    return this.write(job, async (tx, s) => {
      const deadline = tx.now + leaseMs;
      if (s.state === 'running') await present(tx, s.id, owner, deadline);
      // A host loading a partition slowly keeps it: others take another one meanwhile.
      if (s.partitions > 0)
        await tx.run(
          'UPDATE pw_partitions SET loader_until = ? WHERE job_id = ? AND loader = ?',
          [deadline, s.id, owner],
        );
      if (tokens.length === 0) return [];
      const renewed = await tx.all(
        `UPDATE pw_leases SET deadline = ? WHERE job_id = ? AND owner = ? AND token IN (SELECT e.value FROM ${this.elements.integer} e) RETURNING token`,
        [deadline, s.id, owner, JSON.stringify(tokens)],
      );
      const mine = new Set(renewed.map((r) => Number(r.token)));
      return tokens.filter((token) => !mine.has(token));
    });
  }

  /** A lease past its deadline is not the owner's to complete any more (the next claim hands it out again). */
  async complete(
    job: string,
    owner: string,
    tokens: number[],
  ): Promise<boolean[]> {
    if (tokens.length === 0) return [];
    return this.write(job, async (tx, s) => {
      const taken = await tx.all(
        // `+deadline`: found by token, never by scanning every live lease in deadline order.
        `DELETE FROM pw_leases WHERE job_id = ? AND owner = ? AND +deadline > ? AND token IN (SELECT e.value FROM ${this.elements.integer} e) RETURNING token, run_id, ids`,
        [s.id, owner, tx.now, JSON.stringify(tokens)],
      );
      let ids = 0;
      let completed = 0;
      const gone = new Set<number>();
      for (const lease of taken) {
        gone.add(Number(lease.token));
        if (lease.run_id === s.runId) {
          ids += Number(lease.ids);
          completed++;
        }
      }
      // Each lease counts once, for its first token in the list.
      const counted = tokens.map((token) => gone.delete(token));
      if (completed > 0)
        await tx.run(
          'UPDATE pw_jobs SET ids = ids + ?, completed = completed + ? WHERE id = ?',
          [ids, completed, s.id],
        );
      return counted;
    });
  }

  async fail(
    job: string,
    owner: string,
    token: number,
    options: FailOptions,
  ): Promise<'retry' | 'dead' | 'stale'> {
    return this.write(job, async (tx, s) => {
      const l = await take(tx, s.id, owner, token);
      if (!l) return 'stale';
      const current = l.runId === s.runId ? 1 : 0;
      // Part of the range failed: the rest is done, and only the failed ids go on.
      const range = options.ids
        ? JSON.stringify({ ...l.range, ids: options.ids })
        : l.text;
      const ids = options.ids ? options.ids.length : l.ids;
      const doneIds = current && options.ids ? l.ids - ids : 0;
      if (options.dead)
        await tx.run(
          'INSERT INTO pw_dead_letters (job_id, run_id, range, attempts, error, at) VALUES (?, ?, ?, ?, ?, ?)',
          [
            s.id,
            l.runId,
            range,
            l.attempt,
            JSON.stringify(options.error),
            tx.now,
          ],
        );
      else
        await addPending(tx, s.id, {
          runId: l.runId,
          attempt: l.attempt + 1,
          due: tx.now + options.retryInMs,
          reason: 'retry',
          ids,
          range,
        });
      await tx.run(
        'UPDATE pw_jobs SET ids = ids + ?, dead = dead + ?, retried = retried + ? WHERE id = ?',
        [doneIds, options.dead ? current : 0, options.dead ? 0 : current, s.id],
      );
      return options.dead ? 'dead' : 'retry';
    });
  }

  async release(job: string, owner: string, tokens: number[]): Promise<void> {
    if (tokens.length === 0) return;
    await this.write(job, async (tx, s) => {
      for (const token of tokens) {
        const l = await take(tx, s.id, owner, token);
        if (l)
          await addPending(tx, s.id, {
            runId: l.runId,
            attempt: l.attempt,
            due: tx.now,
            reason: 'released',
            ids: l.ids,
            range: l.text,
          });
      }
    });
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
    await this.write(job, async (tx, s) => {
      refuseOtherApp(job, s.declaredBy, declaredBy, 'reset');
      if (s.state === 'running' && (await active(tx, s.id)))
        throw new RunRefusedError(job, RESET_BUSY(s.runId as string));
      for (const table of RUN_TABLES)
        await tx.run(`DELETE FROM ${table} WHERE job_id = ?`, [s.id]);
      await setJob(tx, s.id, {
        ...ZERO_COUNTERS,
        state: 'idle',
        control: 'run',
        cursor: 'null',
        exhausted: 0,
        partitions: 0,
        total: null,
        error: null,
        started_at: null,
        ended_at: null,
      });
    });
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
    return this.write(job, async (tx, s) => {
      refuseOtherApp(job, s.declaredBy, declaredBy, 'retryDead');
      const dead = await tx.all(
        'SELECT id, run_id, range FROM pw_dead_letters WHERE job_id = ? ORDER BY id',
        [s.id],
      );
      for (const d of dead) {
        const range = String(d.range);
        await addPending(tx, s.id, {
          runId: String(d.run_id),
          attempt: 1,
          due: tx.now,
          reason: 'retry',
          ids: (JSON.parse(range) as StoredRange).ids.length,
          range,
        });
      }
      await tx.run('DELETE FROM pw_dead_letters WHERE job_id = ?', [s.id]);
      return dead.length;
    });
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
    await this.write(job, async (tx, s) => {
      const kept = await tx.get(
        'SELECT status FROM pw_history WHERE job_id = ? AND run_id = ?',
        [s.id, record.runId],
      );
      if (kept && !replaces(record.status, String(kept.status))) return;
      await tx.run(
        `INSERT INTO pw_history (job_id, run_id, seq, status, record)
          VALUES (?, ?, (SELECT COALESCE(MAX(h.seq), 0) + 1 FROM pw_history h WHERE h.job_id = ?), ?, ?)
          ON CONFLICT (job_id, run_id) DO UPDATE SET seq = excluded.seq, status = excluded.status, record = excluded.record`,
        [s.id, record.runId, s.id, record.status, JSON.stringify(record)],
      );
      await tx.run(
        `DELETE FROM pw_history WHERE job_id = ? AND run_id NOT IN
          (SELECT h.run_id FROM pw_history h WHERE h.job_id = ? ORDER BY h.seq DESC LIMIT ?)`,
        [s.id, s.id, Math.max(0, keep)],
      );
    });
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

/** Tables of a job's run state, emptied by reset (dead letters and history stay). */
const RUN_TABLES = [
  'pw_replies',
  'pw_partitions',
  'pw_pending',
  'pw_leases',
  'pw_hosts',
];
