import { RunRefusedError } from '../errors/run-refused.error';
import {
  JOB_DECLARED_ELSEWHERE,
  RESET_BUSY,
  RUN_BUSY,
  STATE_LOST_PART,
} from '../parallel-worker.messages';
import type {
  Claim,
  CommitResult,
  CoordinationStore,
  DeadLetter,
  Lease,
  RunRecord,
  StartRunResult,
  StoreRunState,
  StoredPartition,
  StoredRange,
  StoredHold,
} from './coordination-store.interface';
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
  HeartbeatOptions,
  HistoryOptions,
  JobStore,
  LeaseTokens,
  LeaveOptions,
  RecordRunOptions,
  SetTotalOptions,
  StartOptions,
  TakePermitsOptions,
  HealthTurnOptions,
  HoldOptions,
} from './job-store.interface';
import {
  dropLoader,
  freshPartitions,
  pickPartition,
  renewLoader,
  restartPartitions,
} from './partitions';
import { refuseOtherApp } from './declaration';
import { isLetter } from './dead-letter-key';
import { REPLY_SLOTS } from './reply-slots';
import { pageOf } from './page';
import {
  endedRun,
  type MemoryJobHooks,
  type MemoryJobState,
  newJobState,
  processTime,
  replaces,
  zeroCounters,
  heldMsAt,
  holdAt,
  putOnHold,
} from './memory-job-state';
import { holdWait } from './holds';
import { splitRange } from './split-range';

/** How long a host waits before asking again when only others' leases or later retries are left. */
const WAIT_MS = 100;

/**
 * Coordination state in this process (`storage: 'memory'`, for tests): one
 * host. Leases, retries and dead letters are kept as in the other stores, so a
 * crashed worker's range is handed out again, but everything is gone when the
 * process exits.
 */
export class MemoryStore implements CoordinationStore {
  private readonly handles = new Map<string, MemoryJob>();

  /** Store time (`processTime`); tests give their own. */
  protected now(): number {
    return processTime();
  }

  job(name: string): JobStore {
    let job = this.handles.get(name);
    if (!job) {
      job = new MemoryJob(name, newJobState(), {
        now: () => this.now(),
        saved: () => Promise.resolve(),
      });
      this.handles.set(name, job);
    }
    return job;
  }
}

/**
 * One job's state machine, on plain data (`MemoryJobState`): the memory
 * store's job handle, and the key-value store's between its load and saves.
 */
export class MemoryJob implements JobStore {
  /** By owner and request slot: the request and what it was answered. */
  private readonly replies = new Map<
    string,
    { request: string; answer: Claim | CommitResult }
  >();
  private permits?: { second: number; used: number };

  constructor(
    readonly name: string,
    /** The job's state, changed in place (`hooks.saved` is told after every change). */
    readonly s: MemoryJobState,
    private readonly hooks: MemoryJobHooks,
  ) {}

  private now(): number {
    return this.hooks.now();
  }

  private saved(): Promise<void> {
    return this.hooks.saved(this.s);
  }

  async start({
    runId,
    from,
    declaredBy,
    partitions,
    start,
    plannedFrom,
  }: StartOptions): Promise<StartRunResult> {
    const { s, name: job } = this;
    const now = this.now();
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
    if (s.lost && from === undefined)
      throw new RunRefusedError(job, STATE_LOST_PART(job, s.runId, s.lost));
    if (s.state === 'running' && s.runId) {
      if (from === undefined)
        return {
          runId: s.runId,
          joined: true,
          ...(s.start?.params !== undefined && { params: s.start.params }),
        };
      if (this.active(s, now))
        throw new RunRefusedError(job, RUN_BUSY(s.runId));
    }
    // A run failed for state lost stays active until its hosts left: `from` now would take their leases' ranges away
    // before any of them saw the loss.
    if (from !== undefined && this.windingDown(s, now))
      throw new RunRefusedError(job, RUN_BUSY(s.runId as string));
    if (
      from === undefined &&
      plannedFrom !== undefined &&
      !s.partitions &&
      (!partitions?.length || s.cursor !== plannedFrom)
    )
      return { replanFrom: s.cursor };
    if (declaredBy) s.declaredBy = declaredBy;
    if (from !== undefined) {
      // What is left is the job's state again, as the user said where to go on from.
      s.lost = undefined;
      s.cursor = from;
      if (from === null) s.pending = [];
      s.partitions = partitions?.length
        ? freshPartitions(partitions)
        : undefined;
    } else if (s.partitions) restartPartitions(s.partitions);
    else if (partitions?.length) s.partitions = freshPartitions(partitions);
    this.forgetReplies();
    s.previous = endedRun(s);
    Object.assign(s, {
      runId,
      state: 'running',
      control: 'run',
      total: undefined,
      error: undefined,
      exhausted: false,
      counters: zeroCounters(),
      startedAt: now,
      endedAt: null,
      start: { ...start },
      hold: undefined,
      heldMs: undefined,
      healthAt: undefined,
    });
    await this.saved();
    return { runId, joined: false };
  }

  async claim({
    owner,
    leaseMs,
    request,
    loading,
  }: ClaimOptions): Promise<Claim> {
    const s = this.s;
    if (s.state === 'failed')
      return { type: 'failed', error: s.error ?? 'failed' };
    if (s.state === 'stopped') return { type: 'cancelled' };
    if (s.state !== 'running' || !s.runId) return { type: 'done' };
    const now = this.now();
    this.present(s, owner, now + leaseMs);
    const again = this.replayed(owner, request);
    if (
      again?.type === 'lease' &&
      s.leases.get(again.lease.token)?.owner === owner
    )
      return again;
    if (s.control === 'pause') return { type: 'wait', retryInMs: WAIT_MS };
    const hold = holdAt(s, now);
    if (hold) return { type: 'wait', retryInMs: holdWait(hold, now) };
    const claim = await this.claimNow(s, owner, leaseMs, now, loading);
    if (claim.type === 'lease') this.remember(owner, request, claim);
    return claim;
  }

  private async claimNow(
    s: MemoryJobState,
    owner: string,
    leaseMs: number,
    now: number,
    loading?: number[],
  ): Promise<Claim> {
    const expired = find(s.leases, (l) => l.deadline <= now);
    if (expired) {
      s.leases.delete(expired.token);
      const lease = this.lease(
        s,
        expired.range,
        expired.attempt + 1,
        owner,
        leaseMs,
        now,
      );
      s.counters.retried++;
      await this.saved();
      return { type: 'lease', lease, reason: 'expired' };
    }
    let due = -1;
    for (let i = 0; i < s.pending.length; i++) {
      if (
        s.pending[i].dueAt <= now &&
        (due < 0 || s.pending[i].dueAt < s.pending[due].dueAt)
      )
        due = i;
    }
    if (due >= 0) {
      const [p] = s.pending.splice(due, 1);
      const lease = this.lease(s, p.range, p.attempt, owner, leaseMs, now);
      await this.saved();
      return { type: 'lease', lease, reason: p.reason };
    }
    if (s.partitions) {
      const pick = pickPartition(
        s.partitions,
        owner,
        now,
        loading,
        this.hostsPresent(s, now),
      );
      if (typeof pick === 'number') {
        const p = s.partitions[pick];
        p.loader = { owner, until: now + leaseMs };
        await this.saved();
        return { type: 'load', cursor: p.cursor, partition: pick };
      }
      if (pick === 'wait') return { type: 'wait', retryInMs: WAIT_MS };
    } else if (!s.exhausted) return { type: 'load', cursor: s.cursor };
    if (s.leases.size === 0 && s.pending.length === 0) return { type: 'done' };
    let next = Infinity;
    for (const l of s.leases.values()) next = Math.min(next, l.deadline);
    for (const p of s.pending) next = Math.min(next, p.dueAt);
    return {
      type: 'wait',
      retryInMs: Math.max(1, Math.min(WAIT_MS, next - now)),
    };
  }

  async commit({
    owner,
    expected,
    ranges,
    leaseMs,
    request,
    partition,
  }: CommitOptions): Promise<CommitResult> {
    const s = this.s;
    const again = this.replayed(owner, request);
    if (again?.type === 'leased') return again;
    // The cursor it moves: the job's, or its partition's.
    const part = this.partitionOf(s, partition);
    const at = part ?? s;
    const now = this.now();
    // Another host loads the partition now (it took it over): this load is thrown away, as when the cursor moved.
    const by = part?.loader;
    if (
      at.cursor !== expected ||
      s.state !== 'running' ||
      (by && by.owner !== owner && by.until > now)
    )
      return { type: 'conflict', cursor: at.cursor };
    if (ranges.length === 0) {
      at.exhausted = true;
      if (part) delete part.loader;
      await this.saved();
      return { type: 'exhausted' };
    }
    // On hold: loaded ranges are not leased; the host claims, which waits until the hold ends.
    if (holdAt(s, now)) return { type: 'conflict', cursor: at.cursor };
    at.cursor = ranges[ranges.length - 1].lastId;
    if (part) {
      part.ids += ranges.reduce((n, r) => n + r.ids.length, 0);
      part.loader = { owner, until: now + leaseMs };
    }
    const due =
      some(s.leases, (l) => l.deadline <= now) ||
      s.pending.some((p) => p.dueAt <= now);
    const leases = ranges.map((range) =>
      this.lease(s, range, 1, owner, leaseMs, now),
    );
    const result: CommitResult = { type: 'leased', leases, due };
    this.remember(owner, request, result);
    await this.saved();
    return result;
  }

  async heartbeat({
    owner,
    tokens,
    leaseMs,
  }: HeartbeatOptions): Promise<number[]> {
    const s = this.s;
    const deadline = this.now() + leaseMs;
    if (s.state === 'running') this.present(s, owner, deadline);
    renewLoader(s.partitions, owner, deadline);
    const lost: number[] = [];
    for (const token of tokens) {
      const l = s.leases.get(token);
      if (l && l.owner === owner) l.deadline = deadline;
      else lost.push(token);
    }
    await this.saved();
    return lost;
  }

  async complete({ owner, tokens }: LeaseTokens): Promise<boolean[]> {
    const s = this.s;
    const now = this.now();
    const counted = tokens.map((token) => {
      // Past its deadline the lease is not the owner's to complete, even before a claim took it over: it expires.
      if ((s.leases.get(token)?.deadline ?? Infinity) <= now) return false;
      const l = this.take(s, owner, token);
      if (l && l.runId === s.runId) {
        s.counters.ids += l.range.ids.length;
        s.counters.completed++;
      }
      return l !== undefined;
    });
    await this.saved();
    return counted;
  }

  async fail(options: FailOptions): Promise<'retry' | 'dead' | 'stale'> {
    const { owner, token } = options;
    const s = this.s;
    const now = this.now();
    // A partial failure counts its done part as complete() counts a range: past the deadline, nothing (it expires).
    if (options.ids && (s.leases.get(token)?.deadline ?? Infinity) <= now)
      return 'stale';
    const l = this.take(s, owner, token);
    if (!l) return 'stale';
    const current = l.runId === s.runId;
    // Part of the range failed: the rest is a range that ended done, and only the failed ids go on, as a range of their own.
    const range = options.ids ? { ...l.range, ids: options.ids } : l.range;
    if (current && options.ids && options.ids.length < l.range.ids.length) {
      s.counters.ids += l.range.ids.length - options.ids.length;
      s.counters.completed++;
    }
    if (options.dead) {
      s.dead.push({
        runId: l.runId,
        range,
        attempts: l.attempt,
        error: options.error,
        at: now,
      });
      if (current) s.counters.dead++;
    } else {
      // Split (a range that timed out): its halves go on in its place, as one retry.
      const ranges = (options.split && splitRange(range)) || [range];
      for (const r of ranges)
        s.pending.push({
          range: r,
          runId: l.runId,
          attempt: l.attempt + 1,
          dueAt: now + options.retryInMs,
          reason: 'retry',
        });
      if (current) s.counters.retried++;
    }
    await this.saved();
    return options.dead ? 'dead' : 'retry';
  }

  async release({ owner, tokens }: LeaseTokens): Promise<void> {
    const s = this.s;
    const now = this.now();
    for (const token of tokens) {
      const l = this.take(s, owner, token);
      if (l)
        s.pending.push({
          range: l.range,
          runId: l.runId,
          attempt: l.attempt,
          dueAt: now,
          reason: 'released',
        });
    }
    await this.saved();
  }

  async leave({ owner }: LeaveOptions): Promise<void> {
    const s = this.s;
    if (s.hosts) delete s.hosts[owner];
    dropLoader(s.partitions, owner);
    for (let i = 0; i < REPLY_SLOTS; i++) this.replies.delete(`${owner}\0${i}`);
    await this.saved();
  }

  async endRun({ runId, state, error }: EndRunOptions): Promise<void> {
    const s = this.s;
    if (s.runId !== runId || s.state !== 'running') return;
    Object.assign(s, { state, error, endedAt: this.now() });
    await this.saved();
  }

  async takePermits({
    wanted,
    perSecond,
  }: TakePermitsOptions): Promise<{ granted: number; waitMs: number }> {
    const now = this.now();
    const second = Math.floor(now / 1000);
    const p = this.permits;
    const used = p && p.second === second ? p.used : 0;
    const granted = Math.max(0, Math.min(wanted, perSecond - used));
    this.permits = { second, used: used + granted };
    return { granted, waitMs: granted ? 0 : 1000 - (now % 1000) };
  }

  async control({
    action,
    declaredBy,
  }: ControlOptions): Promise<string | null> {
    const { s, name: job } = this;
    refuseOtherApp(job, s.declaredBy, declaredBy, action);
    if (s.state !== 'running') return null;
    if (action === 'cancel')
      Object.assign(s, {
        state: 'stopped',
        control: 'run',
        endedAt: this.now(),
      });
    else s.control = action === 'pause' ? 'pause' : 'run';
    await this.saved();
    return s.runId;
  }

  async reset({ declaredBy }: DeclaredBy = {}): Promise<void> {
    const { s, name: job } = this;
    refuseOtherApp(job, s.declaredBy, declaredBy, 'reset');
    const now = this.now();
    if (
      (s.state === 'running' || this.windingDown(s, now)) &&
      this.active(s, now)
    )
      throw new RunRefusedError(job, RESET_BUSY(s.runId as string));
    this.forgetReplies();
    Object.assign(s, {
      state: 'idle',
      control: 'run',
      cursor: null,
      exhausted: false,
      partitions: undefined,
      pending: [],
      leases: new Map(),
      hosts: {},
      counters: zeroCounters(),
      total: undefined,
      error: undefined,
      startedAt: null,
      endedAt: null,
      lost: undefined,
    });
    await this.saved();
  }

  async setTotal({ runId, total }: SetTotalOptions): Promise<void> {
    const s = this.s;
    if (s.runId === runId) s.total = total;
    await this.saved();
  }

  async countWorkers({
    runId,
    started,
    restarted,
  }: CountWorkersOptions): Promise<void> {
    const s = this.s;
    if (s.runId !== runId) return;
    s.counters.workersStarted += started;
    s.counters.workersRestarted += restarted;
    await this.saved();
  }

  async hold({ runId, reason, indicator, holdMs }: HoldOptions): Promise<void> {
    const s = this.s;
    if (s.runId !== runId || s.state !== 'running') return;
    putOnHold(s, { reason, indicator, holdMs }, this.now());
    // No other host's turn until a hold's length after it ends: the host that put it asks again as it ends.
    s.healthAt = (s.hold?.until ?? 0) + holdMs;
    await this.saved();
  }

  async healthTurn({ runId, intervalMs }: HealthTurnOptions): Promise<boolean> {
    const s = this.s;
    const now = this.now();
    if (s.runId !== runId || s.state !== 'running') return false;
    if ((s.healthAt ?? 0) > now) return false;
    s.healthAt = now + intervalMs;
    await this.saved();
    return true;
  }

  async state({ declaredBy }: DeclaredBy = {}): Promise<StoreRunState> {
    const { s, name: job } = this;
    refuseOtherApp(job, s.declaredBy, declaredBy, 'status');
    const now = this.now();
    return {
      runId: s.runId,
      state: s.state,
      control: s.control,
      total: s.total,
      error: s.error,
      ...(s.start?.params !== undefined && { params: s.start.params }),
      ...(s.start?.startedBy !== undefined && {
        startedBy: s.start.startedBy,
      }),
      ...(s.start?.host !== undefined && { startedOn: s.start.host }),
      cursor: s.cursor,
      exhausted: s.partitions
        ? s.partitions.every((p) => p.exhausted)
        : s.exhausted,
      ...(s.partitions && {
        partitions: s.partitions.map((p) => ({
          ...p,
          ...(p.loader && { loader: { ...p.loader } }),
        })),
      }),
      counters: { ...s.counters },
      leased: s.leases.size,
      active: s.state === 'running' && this.active(s, now),
      retrying: s.pending.length,
      dead: s.dead.length,
      startedAt: s.startedAt,
      endedAt: s.endedAt,
      now,
      ...(s.previous && { previous: { ...s.previous } }),
      ...(holdAt(s, now) && { hold: { ...(s.hold as StoredHold) } }),
      heldMs: heldMsAt(s, now),
    };
  }

  async retryDead({
    declaredBy,
    only,
  }: RetryDeadOptions = {}): Promise<number> {
    const { s, name: job } = this;
    refuseOtherApp(job, s.declaredBy, declaredBy, 'retryDead');
    const one = only && s.dead.findIndex((d) => isLetter(d, only));
    const dead =
      one === undefined
        ? s.dead.splice(0)
        : one < 0
          ? []
          : s.dead.splice(one, 1);
    const now = this.now();
    for (const d of dead)
      s.pending.push({
        range: d.range,
        runId: d.runId,
        attempt: 1,
        dueAt: now,
        reason: 'retry',
      });
    await this.saved();
    return dead.length;
  }

  async deadLetters(options?: DeadLettersOptions): Promise<DeadLetter[]> {
    const { s, name: job } = this;
    refuseOtherApp(job, s.declaredBy, options?.declaredBy, 'deadLetters');
    const page = pageOf(options);
    const dead = s.dead;
    const some = page
      ? dead.slice(page.offset, page.offset + page.limit)
      : dead;
    return some.map((d) => ({ ...d }));
  }

  async recordRun({ record, keep }: RecordRunOptions): Promise<void> {
    const s = this.s;
    const history = s.history ?? [];
    const kept = history.find((r) => r.runId === record.runId);
    if (kept && !replaces(record.status, kept.status)) return;
    s.history = [
      structuredClone(record),
      ...history.filter((r) => r !== kept),
    ].slice(0, keep);
    await this.saved();
  }

  async leasesByOwner({ declaredBy }: DeclaredBy = {}): Promise<
    Record<string, number>
  > {
    const { s, name: job } = this;
    refuseOtherApp(job, s.declaredBy, declaredBy, 'leasesByHost');
    const owners: Record<string, number> = {};
    for (const l of s.leases.values())
      owners[l.owner] = (owners[l.owner] ?? 0) + 1;
    return owners;
  }

  async history({ limit, declaredBy }: HistoryOptions): Promise<RunRecord[]> {
    const { s, name: job } = this;
    refuseOtherApp(job, s.declaredBy, declaredBy, 'history');
    return structuredClone((s.history ?? []).slice(0, limit));
  }

  /** The partition a commit names (none: the job's own cursor); it must match how the job is split. */
  private partitionOf(
    s: MemoryJobState,
    partition: number | undefined,
  ): StoredPartition | undefined {
    if (partition === undefined && !s.partitions) return undefined;
    const p = partition === undefined ? undefined : s.partitions?.[partition];
    if (!p)
      throw new Error(
        `Job "${this.name}": a commit for partition ${partition} of a job with ${s.partitions?.length ?? 'no'} partitions; hosts of different versions of the app may be sharing the store.`,
      );
    return p;
  }

  /** A live lease, or a host that took part within its lease time and has not left. */
  private active(s: MemoryJobState, now: number): boolean {
    return (
      some(s.leases, (l) => l.deadline > now) ||
      Object.values(s.hosts ?? {}).some((until) => until > now)
    );
  }

  /** The run failed for state lost and a host of it has not left yet (its leases are suspect: part of the state is gone). */
  private windingDown(s: MemoryJobState, now: number): boolean {
    return s.state === 'failed' && !!s.lost && this.hostsPresent(s, now) > 0;
  }

  private hostsPresent(s: MemoryJobState, now: number): number {
    return Object.values(s.hosts ?? {}).filter((until) => until > now).length;
  }

  private present(s: MemoryJobState, owner: string, until: number): void {
    s.hosts ??= {};
    s.hosts[owner] = until;
  }

  private replayed<T extends Claim | CommitResult>(
    owner: string,
    request?: string,
  ): T | undefined {
    if (request === undefined) return undefined;
    const r = this.replies.get(`${owner}\0${slot(request)}`);
    return r?.request === request ? (r.answer as T) : undefined;
  }

  private remember(
    owner: string,
    request: string | undefined,
    answer: Claim | CommitResult,
  ): void {
    if (request !== undefined)
      this.replies.set(`${owner}\0${slot(request)}`, {
        request,
        answer,
      });
  }

  private forgetReplies(): void {
    this.replies.clear();
  }

  private lease(
    s: MemoryJobState,
    range: StoredRange,
    attempt: number,
    owner: string,
    leaseMs: number,
    now: number,
  ): Lease {
    // The same floor as Redis: a later process (or one whose saved counter was lost) still issues larger tokens.
    // The floor is the next millisecond's: a counter lost in the very millisecond it issued a token still goes above it.
    s.nextToken = Math.max(s.nextToken, (now + 1) * 1000 + 1);
    const lease: Lease = {
      token: s.nextToken++,
      runId: s.runId as string,
      range,
      attempt,
      owner,
      deadline: now + leaseMs,
    };
    s.leases.set(lease.token, lease);
    return { ...lease };
  }

  /** Removes and returns the owner's lease `token`, or undefined when it is no longer theirs. */
  private take(
    s: MemoryJobState,
    owner: string,
    token: number,
  ): Lease | undefined {
    const l = s.leases.get(token);
    if (!l || l.owner !== owner) return undefined;
    s.leases.delete(token);
    return l;
  }
}

/** A request's place among the owner's last REPLY_SLOTS: requests are numbered by the host. */
const slot = (request: string): number => Number(request) % REPLY_SLOTS;

function find(
  leases: Map<number, Lease>,
  test: (l: Lease) => boolean,
): Lease | undefined {
  for (const l of leases.values()) if (test(l)) return l;
  return undefined;
}

const some = (
  leases: Map<number, Lease>,
  test: (l: Lease) => boolean,
): boolean => find(leases, test) !== undefined;
