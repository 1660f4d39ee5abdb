import type { WireResult } from '../cluster/ipc.messages';
import type {
  PoolListener,
  WorkerPool,
  WorkerSlot,
} from '../cluster/worker-pool.interface';
import type {
  RunStatus,
  RunSummary,
} from '../interfaces/run-summary.interface';
import type { ID } from '../interfaces/range.interface';
import {
  BeforeStopEvent,
  ParallelWorkerEvent,
  RunCompletedEvent,
  WorkerExitedEvent,
} from '../parallel-worker.events';
import type {
  Lease,
  StoreRunState,
} from '../store/coordination-store.interface';
import { type Clock, monotonicClock } from './clock';
import { DeadRatio } from './dead-ratio';
import { Dispatcher, type InFlight } from './dispatcher';
import {
  CURSOR_WENT_BACK,
  RESET_UNDER_RUN,
  STATE_LOST,
  TOKEN_REUSED,
} from '../parallel-worker.messages';
import { retrying } from './backoff';
import { describeLease } from './lease-format';
import { LeaseKeeper } from './lease-keeper';
import { RangeFeed } from './range-feed';
import { RangeRecorder } from './range-recorder';
import { toWireError } from '../cluster/wire-error';
import { RangeSizer } from './range-sizer';
import { ResultWriter } from './result-writer';
import type { RunDeps } from './run-deps';
import { HealthGate } from './health-gate';

/**
 * The modes of one run on this host. Only `setMode()` changes them.
 *
 * - `running`: the feed claims, loads and commits; ready leases go to workers.
 * - `paused`: (pause from any host or the CLI) nothing new is loaded or sent;
 *   leases are kept and renewed; in-flight ranges finish. Back to `running` on resume.
 * - `stopping`: (stop(), a signal, cancel) nothing new; in-flight ranges get
 *   `shutdownTimeoutMs` to finish; the rest are given back.
 * - `ending`: (completed, or failed) the same wind-down, then the store records the end.
 * - `ended`: every lease given back or recorded, workers drained, summary out.
 *
 * running ⇄ paused; running | paused → stopping | ending → ended.
 */
type Mode = 'running' | 'paused' | 'stopping' | 'ending' | 'ended';

const NEXT: Record<Mode, Mode[]> = {
  running: ['paused', 'stopping', 'ending'],
  paused: ['running', 'stopping', 'ending'],
  stopping: ['ended'],
  ending: ['ended'],
  ended: [],
};

/** How often a host looks for pause, resume and cancel in the store: every host obeys within a second. */
const CONTROL_POLL_MS = 500;
/** How long a host waits before claiming again when the run's state shows work handed out after a claim said done. */
const AGAIN_MS = 100;
/** How long a worker gets to answer after its range timed out before it is killed as unresponsive. */
const UNRESPONSIVE_GRACE_MS = 5000;

/**
 * One run of one job on this host: the feed brings leases, the dispatcher
 * sends them to workers and matches their answers, the lease keeper renews
 * and gives up every lease, the result writer records answers in the store,
 * and this engine routes answers, follows controls and timeouts, and ends
 * the run as completed, stopped or failed.
 */
export class RunEngine implements PoolListener {
  private mode: Mode = 'running';
  private readonly clock: Clock;
  private readonly keeper: LeaseKeeper;
  private readonly dispatcher: Dispatcher;
  private readonly deadRatio: DeadRatio;
  private readonly feed: RangeFeed;
  private readonly recorder: RangeRecorder;
  private readonly sizer: RangeSizer;
  private readonly health: HealthGate;
  private readonly writer: ResultWriter;
  private readonly timers: NodeJS.Timeout[] = [];
  /** How often range timeouts are checked. */
  private readonly checkEveryMs: number;
  private pool!: WorkerPool;
  private resolve!: (summary: RunSummary) => void;
  readonly finished: Promise<RunSummary>;

  constructor(private readonly d: RunDeps) {
    this.finished = new Promise((resolve) => (this.resolve = resolve));
    this.clock = d.clock ?? monotonicClock;
    this.deadRatio = new DeadRatio(d);
    this.recorder = new RangeRecorder(d, (error) => {
      this.deadRatio.dead(error);
      void this.judgeDeadLetters();
    });
    this.sizer = new RangeSizer(d.options);
    this.keeper = new LeaseKeeper(
      d,
      (leases, reason) => this.lost(leases, reason),
      (token) =>
        void this.end(
          'failed',
          TOKEN_REUSED(d.job.name, d.runId, token),
          undefined,
          false,
        ),
    );
    this.dispatcher = new Dispatcher(
      () => this.pool,
      this.clock,
      d.logger,
      d.job.name,
    );
    this.writer = new ResultWriter(d, this.recorder, this.keeper, () => {
      this.health.rangeEnded();
      this.feed.fill();
      this.doneWhileHeld();
    });
    this.feed = new RangeFeed(d, this.keeper, this.dispatcher, {
      handingOut: () => this.handingOut(),
      running: () => this.live,
      leased: () => this.dispatch(),
      needWorkers: () => this.startWorkers(),
      end: (status, error, cause, everywhere) =>
        void this.end(status, error, cause, everywhere),
      exhausted: () => void this.finishIfDone(),
      lost: (found) => void this.otherRun(found),
      wentBack: (cursor, committed) => void this.wentBack(cursor, committed),
      limit: () => this.sizer.limit,
    });
    this.health = new HealthGate(
      d,
      () => this.wake(),
      (held) => {
        if (!held) return this.sizer.resume();
        this.sizer.backOff();
        this.doneWhileHeld();
      },
    );
    this.timers.push(
      setInterval(() => void this.followControl(), CONTROL_POLL_MS),
    );
    const timeout = d.options.rangeTimeoutMs;
    this.checkEveryMs = Math.max(10, Math.min(1000, timeout / 4));
    if (timeout > 0)
      this.timers.push(
        setInterval(() => this.checkTimeouts(), this.checkEveryMs),
      );
  }

  /** Starts the run; the pool's workers start with the first ranges, so a run with nothing to do forks none. */
  start(pool: WorkerPool): void {
    this.pool = pool;
    this.feed.fill();
  }

  private startWorkers(): void {
    if (this.poolStarted || !this.live) return;
    this.poolStarted = true;
    if (this.d.options.workers === 0)
      this.d.logger.info(
        `Job "${this.d.job.name}": run ${this.d.runId} hands out ranges (inline, workers: 0).`,
      );
    this.pool.start();
  }

  private poolStarted = false;

  get stopping(): boolean {
    return this.mode === 'stopping';
  }

  /** Graceful stop: no more hand-outs, in-flight ranges get `shutdownTimeoutMs` to finish, the rest are released. */
  stop(): Promise<RunSummary> {
    void this.end('stopped');
    return this.finished;
  }

  /** Something changed in the store or a hold ended: send and look for work now. */
  wake(): void {
    this.dispatch();
    this.feed.fill();
  }

  /** Forced exit: give every lease back at once and kill the workers. */
  async abandon(): Promise<void> {
    this.pool.killAll();
    await this.keeper.release(this.keeper.tokens());
  }

  // ---- what the pool reports ----

  slotReady(_slot?: WorkerSlot): void {
    this.wake();
  }

  results(slot: WorkerSlot, results: WireResult[]): void {
    const unstarted: number[] = [];
    for (const { f, result } of this.dispatcher.answered(slot, results)) {
      // A timed-out range was failed already: its answer only frees the worker.
      if (f.timedOut) continue;
      const token = f.lease.token;
      // Aborted before it started (the worker says so): given back without an attempt.
      if (!result.ok && result.notStarted) {
        unstarted.push(token);
        continue;
      }
      // Its handler returned with its signal aborted (it may have stopped early, as told), or threw after this host
      // aborted it: not done, and not its failure. It goes out again at attempt + 1, never to the dead letters for that.
      if (result.ok ? result.aborted : f.lost || f.ending) {
        this.handBack(f, result.ok);
        continue;
      }
      if (!result.ok) {
        this.writer.record(
          [token],
          this.recorder.failed(
            f.lease,
            result.error,
            undefined,
            result.failedIds,
          ),
        );
        continue;
      }
      this.sizer.observe(f.lease.range.ids.length, result.ms);
      this.dispatcher.observe(result.ms);
      // Finished before any abort reached it: done, if the store still holds the lease for this host (it refuses
      // a completion past the lease's deadline or after another claim took the range over).
      this.writer.completed({
        lease: f.lease,
        workerId: slot.id,
        ms: result.ms,
      });
    }
    if (unstarted.length)
      this.writer.record(unstarted, this.keeper.release(unstarted));
    this.wake();
    this.writer.wake();
  }

  /** An aborted range its handler returned from (or threw in): handed out again at the next attempt. */
  private handBack(f: InFlight, returned: boolean): void {
    const why = f.lost
      ? 'its lease was given up'
      : f.ending
        ? this.mode === 'stopping'
          ? 'run stopped'
          : 'run ended'
        : 'its signal was aborted';
    if (returned)
      this.d.logger.warn(
        `Job "${this.d.job.name}": the handler of ${describeLease(f.lease)} returned after its signal was aborted (${why}); not counted as done, it goes out again at attempt ${f.lease.attempt + 1}.`,
      );
    this.writer.record(
      [f.lease.token],
      this.recorder.interrupted(f.lease, why),
    );
  }

  slotExited(
    slot: WorkerSlot,
    code: number | null,
    signal: string | null,
    expected: boolean,
  ): void {
    const { job, runId, logger } = this.d;
    if (slot.pid !== process.pid)
      this.d.events.emit(
        ParallelWorkerEvent.WorkerExited,
        new WorkerExitedEvent(job.name, runId, slot.id, slot.pid, code, signal),
      );
    const how = signal ? `signal ${signal}` : `code ${code}`;
    // Timed-out ranges it was asked to split and never answered for: retried whole.
    for (const asked of [...this.splits.values()])
      if (asked.slot === slot) asked.answer(false);
    // Only the oldest `concurrency` unanswered ranges may have started (the worker starts its backlog only
    // after sending the results that made room): they count an attempt; the rest go back untouched.
    const unstarted: number[] = [];
    this.dispatcher.take(slot).forEach((f, i) => {
      if (f.timedOut) return;
      if (i >= slot.capacity) return void unstarted.push(f.lease.token);
      logger.warn(
        `Job "${job.name}": worker ${slot.id} (pid ${slot.pid}) exited with ${how} during ${describeLease(f.lease)}; handing it out again.`,
      );
      this.writer.record(
        [f.lease.token],
        this.recorder.failed(
          f.lease,
          {
            message: `worker ${slot.id} (pid ${slot.pid}) exited with ${how} while handling the range`,
          },
          0,
        ),
      );
    });
    if (unstarted.length) {
      logger.warn(
        `Job "${job.name}": worker ${slot.id} (pid ${slot.pid}) exited with ${how} holding ${unstarted.length} ranges it had not started; handing them out again.`,
      );
      this.writer.record(unstarted, this.keeper.release(unstarted));
    }
    this.writer.wake();
    if (!expected) this.feed.fill();
  }

  /**
   * A handler of this run called `ctx.fence` (each worker says so once per
   * run, before its first fence's database call). From now on a range that
   * times out is retried whole, never split: a range's fence identity is its
   * run, `prev` and ids, so a timed-out attempt that still commits later (a
   * zombie) would apply the whole range, and its halves, with new
   * identities, would apply it again. Kept by this host only: the host that
   * records a timeout is the one whose worker ran the range, which told it.
   * Until a worker says so, each split is asked of the range's worker first
   * (`splitAnswer`): one whose fence was called is retried whole.
   */
  private usesFence = false;
  /** Timed-out ranges whose worker was asked whether they may be split, by token: what it answers. */
  private readonly splits = new Map<
    number,
    { slot: WorkerSlot; answer: (split: boolean) => void }
  >();

  /**
   * What the worker of the timed-out range `f` answers to an abort with
   * `split`: false (retried whole) when it says its fence was called, and
   * when it does not answer within the grace an unresponsive worker gets, or
   * exits first (a fence row of the whole range may have committed).
   */
  private splitAnswer(f: InFlight): Promise<boolean> {
    const token = f.lease.token;
    const grace = Math.min(
      UNRESPONSIVE_GRACE_MS,
      this.d.options.rangeTimeoutMs,
    );
    return new Promise((resolve) => {
      const timer = setTimeout(() => answer(false), grace);
      const answer = (split: boolean) => {
        clearTimeout(timer);
        this.splits.delete(token);
        resolve(split);
      };
      this.splits.set(token, { slot: f.slot, answer });
    });
  }

  splitAnswered(slot: WorkerSlot, token: number, split: boolean): void {
    const asked = this.splits.get(token);
    if (asked?.slot === slot) asked.answer(split);
  }

  fenced(): void {
    if (this.usesFence) return;
    this.usesFence = true;
    this.d.logger.debug(
      `Job "${this.d.job.name}": run ${this.d.runId} uses ctx.fence; ranges that time out are retried whole.`,
    );
  }

  forked(restart: boolean): void {
    void this.d.store
      .countWorkers({
        runId: this.d.runId,
        started: restart ? 0 : 1,
        restarted: restart ? 1 : 0,
      })
      .catch(() => undefined);
  }

  fatal(reason: string): void {
    void this.end('failed', reason);
  }

  /** Obeys pause, resume and cancel, whichever host or CLI asked for them. */
  async followControl(): Promise<void> {
    const { job, store, runId, logger } = this.d;
    if (!this.live) return;
    const s = await store.state().catch(() => undefined);
    if (!s || !this.live) return;
    if (s.runId === runId)
      this.health.seen(s.hold, s.now, CONTROL_POLL_MS + CONTROL_POLL_MS / 2);
    if (s.runId !== runId) {
      this.replaced(s);
    } else if (s.state === 'stopped') {
      logger.warn(`Job "${job.name}": run ${runId} was cancelled; stopping.`);
      void this.end('stopped');
    } else if (s.control === 'pause' && this.mode === 'running') {
      this.setMode('paused');
      logger.info(
        `Job "${job.name}": paused; ${this.dispatcher.inFlightCount} ranges in flight finish, nothing new is handed out.`,
      );
    } else if (s.control === 'run' && this.mode === 'paused') {
      this.setMode('running');
      logger.info(`Job "${job.name}": resumed.`);
      this.wake();
    }
  }

  /** The store's cursor is behind one this host committed: the run's state is gone, or went back (same run id). */
  private async wentBack(cursor: ID | null, committed: ID): Promise<void> {
    const { job, store, runId } = this.d;
    const s = await store.state().catch(() => undefined);
    if (!this.live) return;
    if (s && s.runId !== runId) return this.replaced(s);
    void this.end(
      'failed',
      CURSOR_WENT_BACK(job.name, runId, cursor, committed),
      undefined,
      false,
    );
  }

  /** A claim answered with a lease of another run: the store holds another run now. */
  private async otherRun(found: string | null): Promise<void> {
    const { job, store, runId } = this.d;
    const s = await store.state().catch(() => undefined);
    if (!this.live) return;
    if (s && s.runId !== runId) return this.replaced(s);
    void this.end(
      'failed',
      STATE_LOST(job.name, runId, found),
      undefined,
      false,
    );
  }

  /**
   * The store holds another run than this one. When this run ended just
   * before that one started (a cancel, a failure or its end, seen late
   * here), it ends here the same way; otherwise its state was lost.
   */
  private replaced(s: StoreRunState): void {
    const { job, runId, logger } = this.d;
    const previous = s.previous?.runId === runId ? s.previous : undefined;
    if (previous?.state === 'stopped') {
      logger.warn(
        `Job "${job.name}": run ${runId} was cancelled (run ${s.runId} has started since); stopping.`,
      );
      return void this.end('stopped');
    }
    if (previous?.state === 'failed')
      return void this.end(
        'failed',
        previous.error || `run ${runId} failed on another host`,
        undefined,
        false,
      );
    if (previous?.state === 'completed') return void this.end('completed');
    void this.end(
      'failed',
      STATE_LOST(job.name, runId, s.runId),
      undefined,
      false,
    );
  }

  /**
   * The store says nothing is left: the run is completed, once this host
   * checked that the store still holds this run (a store that lost its state
   * also has nothing left, and must never be taken for a finished run).
   */
  /**
   * On hold nothing claims, and only a claim says the run is done: when the
   * last range ended (or the hold began after it), see from the store's
   * state whether anything is left.
   */
  private doneWhileHeld(): void {
    if (this.mode !== 'running' || this.handingOut()) return;
    if (this.dispatcher.inFlightCount > 0 || this.dispatcher.ready.length > 0)
      return;
    void this.finishIfDone();
  }

  private async finishIfDone(): Promise<void> {
    if (this.dispatcher.inFlightCount > 0 || this.dispatcher.ready.length > 0)
      return;
    const { job, store, runId, logger } = this.d;
    const s = await retrying(
      () => store.state(),
      logger,
      `state for job "${job.name}"`,
    ).catch(() => undefined);
    if (!this.live) return;
    if (s && s.runId !== runId) return this.replaced(s);
    // Another host (or the store, for state lost) ended the run meanwhile: never report it completed over that.
    if (s && s.state === 'failed')
      return void this.end(
        'failed',
        s.error ||
          `run ${runId} of job "${job.name}" was failed by another host`,
        undefined,
        false,
      );
    if (s && s.state === 'stopped') return void this.end('stopped');
    // Reset while this host was cut off past leaseMs: its leases went with the reset, none of them was finished here.
    if (s && s.state === 'idle')
      return void this.end(
        'failed',
        RESET_UNDER_RUN(job.name, runId),
        undefined,
        false,
      );
    // Handed out again since the claim that said done (retryDead, a release landing late): not over yet, claim again
    // (after a short wait, so a store whose state and claim disagree cannot spin this host).
    if (s && s.state === 'running' && (s.leased > 0 || s.retrying > 0))
      return this.feed.fill(AGAIN_MS);
    // Not loaded to the end (asked while on hold, not after a claim said done): the run goes on after the hold.
    if (s && s.state === 'running' && !s.exhausted) return;
    const tooManyDead = s && (await this.deadRatio.exceeded(s.counters));
    if (!this.live) return;
    if (tooManyDead) void this.end('failed', tooManyDead);
    else if (s) void this.end('completed');
    else
      void this.end(
        'failed',
        `the coordination store did not answer whether run ${runId} of job "${job.name}" is complete`,
        undefined,
        false,
      );
  }

  /** A range went to the dead letters: past maxDeadRatio (the whole run's counts) the run fails at once, on every host. */
  private async judgeDeadLetters(): Promise<void> {
    const { store, runId } = this.d;
    const s = await store.state().catch(() => undefined);
    if (!this.live || !s || s.runId !== runId || s.state !== 'running') return;
    const tooManyDead = await this.deadRatio.exceeded(s.counters);
    if (tooManyDead && this.live) void this.end('failed', tooManyDead);
  }

  // ---- leases and timeouts ----

  /** Running or paused: the run has not begun to end. */
  private get live(): boolean {
    return this.mode === 'running' || this.mode === 'paused';
  }

  private handingOut(): boolean {
    return this.mode === 'running' && this.health.open();
  }

  private dispatch(): void {
    if (this.handingOut()) this.dispatcher.dispatch();
  }

  /** The keeper gave these leases up (lost, or not renewed in time): they are not sent, and running handlers are aborted. */
  private lost(leases: Lease[], reason: string): void {
    const running = this.dispatcher.giveUp(new Set(leases.map((l) => l.token)));
    for (const f of running)
      this.d.logger.warn(
        `Job "${this.d.job.name}": ${describeLease(f.lease)} is no longer this host's (${reason}); its handler's signal is aborted.`,
      );
    this.dispatcher.abort(running, reason);
    const idle = leases.length - running.length;
    if (idle)
      this.d.logger.warn(
        `Job "${this.d.job.name}": ${idle} ranges not running here (ready, or answered and not yet recorded) are no longer this host's (${reason}).`,
      );
  }

  /** Fails ranges past rangeTimeoutMs (their signal aborts) and kills workers that stay unresponsive after that. */
  private checkTimeouts(): void {
    const { rangeTimeoutMs } = this.d.options;
    const { timedOut, unresponsive } = this.dispatcher.overdue(
      rangeTimeoutMs,
      Math.min(UNRESPONSIVE_GRACE_MS, rangeTimeoutMs),
      this.checkEveryMs,
    );
    for (const f of timedOut) {
      f.timedOut = true;
      const error = {
        message: `the handler ran past rangeTimeoutMs (${rangeTimeoutMs} ms)`,
      };
      // Its retry is two ranges of half its ids each, unless the run uses ctx.fence (see `fenced`), it goes to the
      // dead letters, or this was not the range's first hand-out (see `Dispatcher.fresh`: an earlier attempt, on
      // any host, may still commit it whole); and only once its worker said its fence was not called (and now
      // refuses), so no attempt of the whole range can commit next to its halves.
      const ask =
        !this.usesFence &&
        this.dispatcher.fresh.has(f.lease) &&
        f.lease.range.ids.length >= 2 &&
        // A loader's payload may describe the whole range (bounds, an offset): both halves would get it.
        f.lease.range.payload === undefined &&
        f.lease.attempt < this.d.options.maxAttempts;
      if (!ask) {
        f.slot.abort([f.lease.token], 'range timeout');
        this.writer.record(
          [f.lease.token],
          this.recorder.failed(f.lease, error),
        );
        continue;
      }
      const answer = this.splitAnswer(f);
      f.slot.abort([f.lease.token], 'range timeout', true);
      this.writer.record(
        [f.lease.token],
        answer.then((split) =>
          this.recorder.failed(f.lease, error, undefined, undefined, split),
        ),
      );
    }
    for (const f of unresponsive) {
      if (f.slot.pid === process.pid) {
        // Inline handlers cannot be killed: stop waiting for this one (its range was failed and goes out again).
        this.dispatcher.remove([f]);
        const ran = Math.round(this.clock.now() - (f.startedAt as number));
        this.d.logger.warn(
          `Job "${this.d.job.name}": the inline handler of ${describeLease(f.lease)} ignores its aborted signal ${ran} ms in; no longer waiting for it.`,
        );
        this.wake();
        this.writer.wake();
      } else if (f.slot.kill()) {
        const ran = Math.round(this.clock.now() - (f.startedAt as number));
        this.d.logger.warn(
          `Job "${this.d.job.name}": worker ${f.slot.id} (pid ${f.slot.pid}) is unresponsive ${ran} ms into ${describeLease(f.lease)}; killing it.`,
        );
      }
    }
  }

  private setMode(next: Mode): void {
    if (!NEXT[this.mode].includes(next))
      throw new Error(
        `Job "${this.d.job.name}": a run cannot go from ${this.mode} to ${next}`,
      );
    this.mode = next;
  }

  // ---- end of run ----

  /** What made the run fail (the loader's error, …), for the RunFailedError's `cause`. */
  failureCause?: unknown;

  private async end(
    status: RunStatus,
    error?: string,
    cause?: unknown,
    everywhere = true,
  ): Promise<void> {
    if (!this.live) return;
    const { job, runId, store, options, logger } = this.d;
    this.setMode(status === 'stopped' ? 'stopping' : 'ending');
    this.feed.stop();
    // One line: the error itself (with the cause and its stack) is what run() rejects with.
    if (status === 'failed') {
      this.failureCause = cause;
      logger.error(`Job "${job.name}" failed: ${error}`);
    }
    const reason = status === 'stopped' ? 'run stopped' : 'run failed';
    if (this.dispatcher.inFlightCount)
      logger.info(
        `Job "${job.name}": ${status === 'stopped' ? 'stopping' : 'ending'}; waiting up to ${options.shutdownTimeoutMs} ms for ${this.dispatcher.inFlightCount} ranges in flight.`,
      );
    // Claims and commits in flight land first: their leases are given back with the rest.
    await this.keeper.settled();
    // Ranges still in a worker's backlog are aborted there: it answers `notStarted` for those it had not started (given back
    // then, at the same attempt), and as usual for those it had (their "started" news may still be on its way).
    const backlog = [...this.dispatcher.inFlight()].filter(
      (f) => f.startedAt === undefined,
    );
    for (const f of backlog) f.ending = true;
    this.dispatcher.abort(backlog, reason);
    const sent = new Set(
      [...this.dispatcher.inFlight()].map((f) => f.lease.token),
    );
    this.dispatcher.ready.length = 0;
    await this.keeper
      .release(
        this.keeper
          .tokens()
          .filter((t) => !sent.has(t) && !this.writer.writing(t)),
      )
      .catch(() => undefined);
    await this.writer.settle(
      options.shutdownTimeoutMs,
      () => this.dispatcher.inFlightCount === 0,
    );
    const left = [...this.dispatcher.inFlight()];
    if (left.length) {
      // Their handlers may still run: another host takes them at attempt + 1, so the handler can tell.
      this.dispatcher.abort(left, reason);
      this.dispatcher.remove(left);
      for (const f of left.filter((f) => !f.timedOut))
        this.writer.record(
          [f.lease.token],
          this.recorder.interrupted(f.lease, reason),
        );
      logger.warn(
        `Job "${job.name}": ${left.length} ranges were still running after shutdownTimeoutMs; they are handed out again at the next attempt.`,
      );
    }
    await this.writer.settle(
      options.shutdownTimeoutMs,
      () => this.dispatcher.inFlightCount === 0,
    );
    await this.keeper
      .release(this.keeper.tokens().filter((t) => !this.writer.writing(t)))
      .catch(() => undefined);
    this.keeper.stop();
    // This host no longer keeps the run active (for reset and `from`).
    await store.leave?.({ owner: this.d.hostId }).catch(() => undefined);
    if (status !== 'stopped' && everywhere)
      await store
        .endRun({ runId, state: status, error })
        .catch(() => undefined);
    for (const timer of this.timers) clearInterval(timer);
    this.health.stop();
    await this.pool.drain(Math.max(options.shutdownTimeoutMs, 5000));
    const summary = await this.recorder.summary(
      status,
      error,
      this.pool,
      Math.round(this.clock.now() - this.d.startedAt),
    );
    // The cause's stack (masked and capped as a dead letter's is) tells where a failed run broke.
    await this.recorder.keep(
      summary,
      status === 'failed' && typeof cause === 'object' && cause !== null
        ? toWireError(cause).stack
        : undefined,
      this.health.lastHold,
    );
    this.setMode('ended');
    if (status === 'stopped')
      this.d.events.emit(
        ParallelWorkerEvent.BeforeStop,
        new BeforeStopEvent(job.name, runId, summary),
      );
    this.d.events.emit(
      ParallelWorkerEvent.RunCompleted,
      new RunCompletedEvent(job.name, runId, summary),
    );
    this.resolve(summary);
  }
}
