import type { WireError } from '../cluster/ipc.messages';
import type { WorkerPool } from '../cluster/worker-pool.interface';
import type {
  RunStatus,
  RunSummary,
} from '../interfaces/run-summary.interface';
import {
  ParallelWorkerEvent,
  RangeCompletedEvent,
  RangeFailedEvent,
} from '../parallel-worker.events';
import type {
  Lease,
  RunRecord,
  StoredHold,
  StoreRunState,
} from '../store/coordination-store.interface';
import type { ID } from '../interfaces/range.interface';
import { splitRange } from '../store/split-range';
import { backoff, retrying } from './backoff';
import { describeLease, rangeInfo } from './lease-format';
import type { RunDeps } from './run-deps';

/** A range a worker finished: its lease, who ran it and for how long. */
export interface Finished {
  lease: Lease;
  workerId: string;
  ms?: number;
}

/**
 * Records what workers report: completions (in one store call per batch,
 * counting each range once) and failures (a retry with backoff, or the dead
 * letters after maxAttempts), with the log lines and events that go with them.
 */
export class RangeRecorder {
  /** This host's share of the run. */
  ids = 0;
  ranges = 0;

  constructor(
    private readonly d: RunDeps,
    /** A range went to the dead letters with this error. */
    private readonly deadLettered: (error: WireError) => void = () => {},
  ) {}

  async complete(done: Finished[]): Promise<void> {
    const { job, runId, store, hostId, logger, events } = this.d;
    const counted = await retrying(
      () =>
        store.complete({
          owner: hostId,
          tokens: done.map((f) => f.lease.token),
        }),
      logger,
      `complete for job "${job.name}"`,
    );
    done.forEach((f, i) => {
      if (counted[i]) {
        this.ids += f.lease.range.ids.length;
        this.ranges++;
      } else {
        logger.warn(
          `Job "${job.name}": ${describeLease(f.lease)} finished after its lease was lost; it was handed out again and is not counted twice.`,
        );
      }
      events.emit(
        ParallelWorkerEvent.RangeCompleted,
        new RangeCompletedEvent(
          job.name,
          runId,
          rangeInfo(f.lease),
          f.workerId,
          counted[i],
          f.ms,
        ),
      );
    });
  }

  /**
   * The run ended while the handler still ran (past shutdownTimeoutMs), or
   * the handler returned after its signal was aborted (it may have stopped
   * early): the range goes out again at once, at the next attempt, so a
   * handler that runs on here and the one that takes it over can tell.
   * Never dead-lettered.
   */
  async interrupted(lease: Lease, reason: string): Promise<void> {
    const { job, store, hostId, logger } = this.d;
    const error = { message: `${reason} while the handler was still running` };
    await retrying(
      () =>
        store.fail({
          owner: hostId,
          token: lease.token,
          error,
          dead: false,
          retryInMs: 0,
        }),
      logger,
      `fail for job "${job.name}"`,
    );
  }

  /**
   * `delayMs` overrides the backoff (0: a crashed worker's range goes out
   * again at once). `failedIds`: the handler threw RangeItemsFailedError
   * naming these: the rest of the range is done, only these go on. `split`
   * (a range that timed out): its retry is two ranges of half its ids each
   * (`FailOptions.split`); the caller never asks it for a range of a run
   * known to use `ctx.fence`, nor for one whose worker did not say that its
   * fence was not called (and now refuses).
   */
  async failed(
    lease: Lease,
    error: WireError,
    delayMs?: number,
    failedIds?: ID[],
    split = false,
  ): Promise<void> {
    const { job, runId, store, hostId, options, logger, events } = this.d;
    const part = failedIds && this.part(lease, failedIds);
    if (typeof part === 'string') error = { message: part, stack: error.stack };
    const ids = Array.isArray(part) ? part : undefined;
    const dead = lease.attempt >= options.maxAttempts;
    const retryInMs = delayMs ?? backoff(lease.attempt, options);
    const outcome = await retrying(
      () =>
        store.fail({
          owner: hostId,
          token: lease.token,
          error,
          dead,
          retryInMs,
          ...(ids && { ids }),
          ...(split && { split }),
        }),
      logger,
      `fail for job "${job.name}"`,
    );
    if (outcome === 'dead') this.deadLettered(error);
    // The done part of a partial failure is a range that ended done, as the store counts it.
    if (ids && outcome !== 'stale') {
      this.ids += lease.range.ids.length - ids.length;
      this.ranges++;
    }
    const halves =
      split && outcome === 'retry'
        ? splitRange({ ...lease.range, ...(ids && { ids }) })
        : undefined;
    if (halves)
      logger.warn(
        `Job "${job.name}": ${describeLease(lease)} timed out; split into 2 ranges of ${halves[0].ids.length} and ${halves[1].ids.length} ids for its retry in ${retryInMs} ms: ${error.message}`,
      );
    const what =
      outcome === 'dead'
        ? `sent to the dead letters after ${lease.attempt} attempts`
        : outcome === 'retry'
          ? `will be retried in ${retryInMs} ms`
          : 'its lease was already lost';
    if (!halves)
      logger.warn(
        `Job "${job.name}": ${describeLease(lease)} failed${ids ? ` for ${ids.length} of its ${lease.range.ids.length} ids${outcome === 'stale' ? ' (none counted done: it goes out again whole)' : ' (the rest are done)'}` : ''} and ${what}: ${error.message}`,
      );
    events.emit(
      ParallelWorkerEvent.RangeFailed,
      new RangeFailedEvent(job.name, runId, rangeInfo(lease), error, outcome),
    );
  }

  /**
   * The range's own ids that a RangeItemsFailedError named, in range order;
   * undefined when it named them all (the whole range failed); a message when
   * it named none or ids the range does not have (then the whole range fails).
   */
  private part(lease: Lease, named: ID[]): ID[] | string | undefined {
    const wanted = new Set(named.map(String));
    const ids = lease.range.ids.filter((id) => wanted.has(String(id)));
    const have = new Set(lease.range.ids.map(String));
    const strangers = [...wanted].filter((id) => !have.has(id));
    const where = `${this.d.job.handler.name} threw RangeItemsFailedError`;
    if (strangers.length)
      return `${where} naming ${strangers.length === 1 ? 'an id' : `${strangers.length} ids`} that ${strangers.length === 1 ? 'is' : 'are'} not in its range (${strangers.slice(0, 5).join(', ')}${strangers.length > 5 ? ', …' : ''}): name only ids of the range it was given; the whole range is retried`;
    if (ids.length === 0)
      return `${where} naming no ids: throw it only when some failed; the whole range is retried`;
    return ids.length === lease.range.ids.length ? undefined : ids;
  }

  /** The store's state of this run, as `summary()` last read it. */
  private last?: StoreRunState;

  /** The run's summary: the store's counters for the whole run (all hosts), this host's share. */
  async summary(
    status: RunStatus,
    error: string | undefined,
    pool: WorkerPool,
    durationMs: number,
  ): Promise<RunSummary> {
    const { job, runId, store } = this.d;
    const s = await store.state().catch(() => undefined);
    this.last = s && s.runId === runId ? s : undefined;
    const c = this.last?.counters;
    return {
      job: job.name,
      runId,
      status,
      ids: c?.ids ?? this.ids,
      ranges: {
        completed: c?.completed ?? this.ranges,
        retried: c?.retried ?? 0,
        dead: c?.dead ?? 0,
      },
      workers: {
        started: c?.workersStarted ?? pool.started,
        restarted: c?.workersRestarted ?? pool.restarted,
      },
      durationMs,
      heldMs: this.last?.heldMs ?? 0,
      ...(error !== undefined ? { error } : {}),
      host: { ids: this.ids, ranges: this.ranges },
    };
  }

  /**
   * Leaves the run's record in the job's history (before run() resolves): a
   * stop the store saw as the run's end (cancel) is `cancelled`. One try: a
   * store that is gone costs the record, not the run's end. A run that
   * completed with nothing handled, retried or dead leaves none.
   */
  async keep(
    summary: RunSummary,
    stack?: string,
    lastHold?: StoredHold,
  ): Promise<void> {
    const { job, runId, store, options, logger } = this.d;
    if (!store.recordRun || options.historyLimit === 0) return;
    const s = this.last;
    // A run with nothing to do (a cron tick after the job caught up) leaves no record: it would push real runs out.
    if (
      summary.status === 'completed' &&
      summary.ids === 0 &&
      summary.ranges.completed +
        summary.ranges.retried +
        summary.ranges.dead ===
        0 &&
      (s?.dead ?? 0) === 0
    )
      return;
    const record: RunRecord = {
      runId,
      job: job.name,
      params: this.d.params ?? null,
      status:
        summary.status === 'stopped' && s?.state === 'stopped'
          ? 'cancelled'
          : summary.status,
      startedBy: s ? (s.startedBy ?? null) : (this.d.startedBy ?? null),
      host: s?.startedOn ?? null,
      startedAt: s?.startedAt ?? null,
      endedAt: s?.endedAt ?? s?.now ?? Date.now(),
      summary,
      ...(summary.error !== undefined && { error: summary.error }),
      ...(stack !== undefined && { stack }),
      deadLetters: s?.dead ?? summary.ranges.dead,
      ...(lastHold && { lastHold }),
    };
    await store
      .recordRun({ record, keep: options.historyLimit })
      .catch((e) =>
        logger.warn(
          `Job "${job.name}": run ${runId} left no history record: ${(e as Error).message}`,
        ),
      );
  }
}
