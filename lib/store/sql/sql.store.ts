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
  StoreRunState,
  StoredRange,
} from '../coordination-store.interface';
import { pickPartition } from '../partitions';
import type {
  SqlDialect,
  SqlTransaction,
  SqlValue,
} from './sql-dialect.interface';
import {
  jobRow,
  LEASE_COLUMNS,
  leaseRow,
  loadPartitions,
  setJob,
  ZERO_COUNTERS,
  type JobRow,
} from './sql.rows';
import { migrate, SCHEMA_VERSION } from './sql.schema';
import {
  active,
  addPending,
  lease,
  leaseOf,
  present,
  remember,
  replayed,
  take,
  tokens,
} from './sql-leases';

/** How long a host waits before asking again when only others' leases or later retries are left. */
const WAIT_MS = 100;

/**
 * Coordination in a SQL database: a SQLite file every process of a host
 * shares (`SqliteDialect`), and the same tables and statements on another
 * database through its dialect. Every operation is one transaction that
 * first takes the job's write lock, with time read from the database once;
 * cursors move by compare-and-set in `UPDATE … WHERE cursor = ?`; fencing
 * tokens come from the job's counter, never below store time in ms x 1000, so
 * they only go up across processes and restores. Semantics are MemoryStore's
 * (the contract suite holds all stores to them).
 */
export class SqlStore implements CoordinationStore {
  readonly where: string;
  private ready?: Promise<void>;

  /** `space`: the `storageKey`; two apps with different ones keep different jobs in one database. */
  constructor(
    private readonly dialect: SqlDialect,
    private readonly space = 'parallel-worker',
  ) {
    this.where = dialect.where;
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

  /** One reading transaction; `row` is undefined for a job the database does not hold. */
  private async read<T>(
    job: string,
    work: (tx: SqlTransaction, row: JobRow | undefined) => Promise<T>,
  ): Promise<T> {
    try {
      await this.prepare();
      return await this.dialect.transaction(false, async (tx) => {
        const row = await tx.get(
          'SELECT * FROM pw_jobs WHERE space = ? AND name = ?',
          [this.space, job],
        );
        return work(tx, row ? jobRow(row) : undefined);
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
  ): Promise<{ runId: string; joined: boolean; params?: string }> {
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
    return this.write(job, async (tx, s) => {
      if (s.state === 'failed')
        return { type: 'failed', error: s.error ?? 'failed' };
      if (s.state === 'stopped') return { type: 'cancelled' };
      if (s.state !== 'running' || !s.runId) return { type: 'done' };
      const now = tx.now;
      await present(tx, s.id, owner, now + leaseMs);
      const again = await replayed(tx, s.id, owner, request);
      if (again?.type === 'lease') {
        const held = await tx.get(
          `SELECT ${LEASE_COLUMNS} FROM pw_leases WHERE job_id = ? AND token = ? AND owner = ?`,
          [s.id, again.token, owner],
        );
        if (held)
          return { type: 'lease', lease: leaseOf(held), reason: again.reason };
      }
      if (s.control === 'pause') return { type: 'wait', retryInMs: WAIT_MS };
      const claim = await this.claimNow(tx, s, owner, leaseMs, loading);
      if (claim.type === 'lease')
        await remember(tx, s.id, owner, request, {
          type: 'lease',
          token: claim.lease.token,
          reason: claim.reason,
        });
      return claim;
    });
  }

  private async claimNow(
    tx: SqlTransaction,
    s: JobRow,
    owner: string,
    leaseMs: number,
    loading?: number[],
  ): Promise<Claim> {
    const now = tx.now;
    const expired = await tx.get(
      `SELECT ${LEASE_COLUMNS} FROM pw_leases WHERE job_id = ? AND deadline <= ? ORDER BY deadline, token LIMIT 1`,
      [s.id, now],
    );
    if (expired) {
      const old = leaseRow(expired);
      await tx.run('DELETE FROM pw_leases WHERE job_id = ? AND token = ?', [
        s.id,
        old.token,
      ]);
      await tx.run('UPDATE pw_jobs SET retried = retried + 1 WHERE id = ?', [
        s.id,
      ]);
      const leased = await lease(tx, s, old.text, old.ids, {
        attempt: old.attempt + 1,
        owner,
        leaseMs,
      });
      return { type: 'lease', lease: leased, reason: 'expired' };
    }
    const due = await tx.get(
      'SELECT id, attempt, reason, ids, range FROM pw_pending WHERE job_id = ? AND due <= ? ORDER BY due, id LIMIT 1',
      [s.id, now],
    );
    if (due) {
      await tx.run('DELETE FROM pw_pending WHERE id = ?', [Number(due.id)]);
      const leased = await lease(tx, s, String(due.range), Number(due.ids), {
        attempt: Number(due.attempt),
        owner,
        leaseMs,
      });
      return {
        type: 'lease',
        lease: leased,
        reason: due.reason as 'retry' | 'released',
      };
    }
    if (s.partitions > 0) {
      const parts = await loadPartitions(tx, s.id);
      const hosts = await tx.get(
        'SELECT COUNT(*) AS n FROM pw_hosts WHERE job_id = ? AND until > ?',
        [s.id, now],
      );
      const pick = pickPartition(parts, owner, now, loading, Number(hosts?.n));
      if (typeof pick === 'number') {
        await tx.run(
          'UPDATE pw_partitions SET loader = ?, loader_until = ? WHERE job_id = ? AND idx = ?',
          [owner, now + leaseMs, s.id, pick],
        );
        return { type: 'load', cursor: parts[pick].cursor, partition: pick };
      }
      if (pick === 'wait') return { type: 'wait', retryInMs: WAIT_MS };
    } else if (!s.exhausted)
      return { type: 'load', cursor: JSON.parse(s.cursor) };
    const next = await tx.get(
      `SELECT (SELECT MIN(deadline) FROM pw_leases WHERE job_id = ?) AS lease,
        (SELECT MIN(due) FROM pw_pending WHERE job_id = ?) AS due`,
      [s.id, s.id],
    );
    const times = [next?.lease, next?.due]
      .filter((t) => t !== null && t !== undefined)
      .map(Number);
    if (times.length === 0) return { type: 'done' };
    return {
      type: 'wait',
      retryInMs: Math.max(1, Math.min(WAIT_MS, Math.min(...times) - now)),
    };
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
    return this.write(job, async (tx, s) => {
      const again = await replayed(tx, s.id, owner, request);
      if (again?.type === 'leased')
        return {
          type: 'leased',
          due: again.due,
          leases: ranges.map((range, i) => ({
            token: again.first + i,
            attempt: 1,
            runId: again.runId,
            range,
            owner,
            deadline: again.deadline,
          })),
        };
      if (partition === undefined ? s.partitions > 0 : !partOf(s, partition))
        throw new Error(
          `Job "${job}": a commit for partition ${partition} of a job with ${s.partitions || 'no'} partitions; hosts of different versions of the app may be sharing the store.`,
        );
      const now = tx.now;
      const part =
        partition === undefined
          ? undefined
          : (await loadPartitions(tx, s.id))[partition];
      const cursor = part ? part.cursorText : s.cursor;
      const conflict = (): CommitResult => ({
        type: 'conflict',
        cursor: JSON.parse(cursor),
      });
      // Another host loads the partition now (it took it over): this load is thrown away, as when the cursor moved.
      const by = part?.loader;
      if (s.state !== 'running' || (by && by.owner !== owner && by.until > now))
        return conflict();
      const expectedText = JSON.stringify(expected);
      if (ranges.length === 0) {
        const changed = part
          ? await tx.run(
              'UPDATE pw_partitions SET exhausted = 1, loader = NULL, loader_until = NULL WHERE job_id = ? AND idx = ? AND cursor = ?',
              [s.id, partition as number, expectedText],
            )
          : await tx.run(
              'UPDATE pw_jobs SET exhausted = 1 WHERE id = ? AND cursor = ?',
              [s.id, expectedText],
            );
        return changed === 1 ? { type: 'exhausted' } : conflict();
      }
      const next = JSON.stringify(ranges[ranges.length - 1].lastId);
      const ids = ranges.reduce((n, r) => n + r.ids.length, 0);
      const moved = part
        ? await tx.run(
            'UPDATE pw_partitions SET cursor = ?, ids = ids + ?, loader = ?, loader_until = ? WHERE job_id = ? AND idx = ? AND cursor = ?',
            [
              next,
              ids,
              owner,
              now + leaseMs,
              s.id,
              partition as number,
              expectedText,
            ],
          )
        : await tx.run(
            'UPDATE pw_jobs SET cursor = ? WHERE id = ? AND cursor = ?',
            [next, s.id, expectedText],
          );
      if (moved !== 1) return conflict();
      const due = !!(await tx.get(
        `SELECT 1 AS due WHERE EXISTS (SELECT 1 FROM pw_leases WHERE job_id = ? AND deadline <= ?)
          OR EXISTS (SELECT 1 FROM pw_pending WHERE job_id = ? AND due <= ?)`,
        [s.id, now, s.id, now],
      ));
      const first = await tokens(tx, s, ranges.length);
      const deadline = now + leaseMs;
      // Every lease in one statement: the ranges' JSON (as text elements, kept exactly) beside their id counts.
      await tx.run(
        `INSERT INTO pw_leases (job_id, ${LEASE_COLUMNS})
          SELECT ?, ? + r.idx, ?, ?, 1, ?, n.value, r.value
          FROM ${this.dialect.elements('text')} r JOIN ${this.dialect.elements('integer')} n ON n.idx = r.idx`,
        [
          s.id,
          first,
          s.runId,
          owner,
          deadline,
          JSON.stringify(ranges.map((range) => JSON.stringify(range))),
          JSON.stringify(ranges.map((range) => range.ids.length)),
        ],
      );
      const leases = ranges.map((range, i) => ({
        token: first + i,
        attempt: 1,
        runId: s.runId as string,
        range,
        owner,
        deadline,
      }));
      await remember(tx, s.id, owner, request, {
        type: 'leased',
        first,
        due,
        deadline,
        runId: s.runId as string,
      });
      return { type: 'leased', leases, due };
    });
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
      await tx.run(
        'UPDATE pw_partitions SET loader_until = ? WHERE job_id = ? AND loader = ?',
        [deadline, s.id, owner],
      );
      if (tokens.length === 0) return [];
      const renewed = await tx.all(
        `UPDATE pw_leases SET deadline = ? WHERE job_id = ? AND owner = ? AND token IN (SELECT e.value FROM ${this.dialect.elements('integer')} e) RETURNING token`,
        [deadline, s.id, owner, JSON.stringify(tokens)],
      );
      const mine = new Set(renewed.map((r) => Number(r.token)));
      const lost = tokens.filter((token) => !mine.has(token));
      return lost;
    });
  }

  async complete(
    job: string,
    owner: string,
    tokens: number[],
  ): Promise<boolean[]> {
    if (tokens.length === 0) return [];
    return this.write(job, async (tx, s) => {
      const taken = await tx.all(
        `DELETE FROM pw_leases WHERE job_id = ? AND owner = ? AND token IN (SELECT e.value FROM ${this.dialect.elements('integer')} e) RETURNING token, run_id, ids`,
        [s.id, owner, JSON.stringify(tokens)],
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
      const current = l.runId === s.runId;
      // Part of the range failed: the rest is done, and only the failed ids go on.
      const range = options.ids
        ? JSON.stringify({ ...l.range, ids: options.ids })
        : l.text;
      const ids = options.ids ? options.ids.length : l.ids;
      if (current && options.ids)
        await tx.run('UPDATE pw_jobs SET ids = ids + ? WHERE id = ?', [
          l.ids - ids,
          s.id,
        ]);
      if (options.dead) {
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
        if (current)
          await tx.run('UPDATE pw_jobs SET dead = dead + 1 WHERE id = ?', [
            s.id,
          ]);
        return 'dead';
      }
      await addPending(tx, s.id, {
        runId: l.runId,
        attempt: l.attempt + 1,
        due: tx.now + options.retryInMs,
        reason: 'retry',
        ids,
        range,
      });
      if (current)
        await tx.run('UPDATE pw_jobs SET retried = retried + 1 WHERE id = ?', [
          s.id,
        ]);
      return 'retry';
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
  ): Promise<string | null> {
    return this.write(job, async (tx, s) => {
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

  async reset(job: string): Promise<void> {
    await this.write(job, async (tx, s) => {
      if (s.state === 'running' && (await active(tx, s.id)))
        throw new RunRefusedError(job, RESET_BUSY(s.runId as string));
      for (const table of [
        'pw_replies',
        'pw_partitions',
        'pw_pending',
        'pw_leases',
        'pw_hosts',
      ])
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

  async state(job: string): Promise<StoreRunState> {
    return this.read(job, async (tx, s) => {
      if (!s)
        return {
          runId: null,
          state: 'idle',
          control: 'run',
          cursor: null,
          exhausted: false,
          counters: {
            ids: 0,
            completed: 0,
            retried: 0,
            dead: 0,
            workersStarted: 0,
            workersRestarted: 0,
          },
          leased: 0,
          retrying: 0,
          dead: 0,
          startedAt: null,
          endedAt: null,
          now: tx.now,
        };
      const parts =
        s.partitions > 0 ? await loadPartitions(tx, s.id) : undefined;
      const counts = await tx.get(
        `SELECT (SELECT COUNT(*) FROM pw_leases WHERE job_id = ?) AS leased,
          (SELECT COUNT(*) FROM pw_pending WHERE job_id = ?) AS retrying,
          (SELECT COUNT(*) FROM pw_dead_letters WHERE job_id = ?) AS dead`,
        [s.id, s.id, s.id],
      );
      return {
        runId: s.runId,
        state: s.state,
        control: s.control,
        ...(s.total !== null && { total: s.total }),
        ...(s.error !== null && { error: s.error }),
        ...(s.params !== null && { params: s.params }),
        ...(s.startedBy !== null && { startedBy: s.startedBy }),
        ...(s.startedOn !== null && { startedOn: s.startedOn }),
        cursor: JSON.parse(s.cursor),
        exhausted: parts ? parts.every((p) => p.exhausted) : s.exhausted,
        ...(parts && {
          partitions: parts.map(({ cursorText: _, ...p }) => p),
        }),
        counters: s.counters,
        leased: Number(counts?.leased),
        retrying: Number(counts?.retrying),
        dead: Number(counts?.dead),
        startedAt: s.startedAt,
        endedAt: s.endedAt,
        now: tx.now,
      };
    });
  }

  async retryDead(job: string): Promise<number> {
    return this.write(job, async (tx, s) => {
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

  async deadLetters(
    job: string,
    page?: { offset: number; limit: number },
  ): Promise<DeadLetter[]> {
    if (page && page.limit <= 0) return [];
    return this.read(job, async (tx, s) => {
      if (!s) return [];
      const select =
        'SELECT run_id, range, attempts, error, at FROM pw_dead_letters WHERE job_id = ? ORDER BY id';
      const rows = page
        ? await tx.all(`${select} LIMIT ? OFFSET ?`, [
            s.id,
            page.limit,
            Math.max(0, page.offset),
          ])
        : await tx.all(select, [s.id]);
      return rows.map((d) => ({
        runId: String(d.run_id),
        range: JSON.parse(String(d.range)),
        attempts: Number(d.attempts),
        error: JSON.parse(String(d.error)),
        at: Number(d.at),
      }));
    });
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
          VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM pw_history WHERE job_id = ?), ?, ?)
          ON CONFLICT (job_id, run_id) DO UPDATE SET seq = excluded.seq, status = excluded.status, record = excluded.record`,
        [s.id, record.runId, s.id, record.status, JSON.stringify(record)],
      );
      await tx.run(
        `DELETE FROM pw_history WHERE job_id = ? AND run_id NOT IN
          (SELECT run_id FROM pw_history WHERE job_id = ? ORDER BY seq DESC LIMIT ?)`,
        [s.id, s.id, Math.max(0, keep)],
      );
    });
  }

  async history(job: string, limit: number): Promise<RunRecord[]> {
    if (limit <= 0) return [];
    return this.read(job, async (tx, s) => {
      if (!s) return [];
      const rows = await tx.all(
        'SELECT record FROM pw_history WHERE job_id = ? ORDER BY seq DESC LIMIT ?',
        [s.id, limit],
      );
      return rows.map((r) => JSON.parse(String(r.record)) as RunRecord);
    });
  }

  async leasesByOwner(job: string): Promise<Record<string, number>> {
    return this.read(job, async (tx, s) => {
      const owners: Record<string, number> = {};
      if (!s) return owners;
      const rows = await tx.all(
        'SELECT owner, COUNT(*) AS n FROM pw_leases WHERE job_id = ? GROUP BY owner ORDER BY owner',
        [s.id],
      );
      for (const r of rows) owners[String(r.owner)] = Number(r.n);
      return owners;
    });
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

/** The job is split into partitions and `partition` is one of them. */
const partOf = (s: JobRow, partition: number): boolean =>
  Number.isInteger(partition) && partition >= 0 && partition < s.partitions;

/**
 * Whether a record of a run may replace the kept one of the same run: a
 * `completed` or `cancelled` record is the run's end and stays; `stopped`
 * (one host stopped) replaces only `stopped`.
 */
function replaces(next: RunRecord['status'], kept: string): boolean {
  if (kept === 'completed' || kept === 'cancelled') return false;
  return next !== 'stopped' || kept === 'stopped';
}
