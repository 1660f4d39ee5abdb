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
import type { Lease } from '../store/coordination-store.interface';
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

  constructor(private readonly d: RunDeps) {}

  async complete(done: Finished[]): Promise<void> {
    const { job, runId, store, hostId, logger, events } = this.d;
    const counted = await retrying(
      () =>
        store.complete(
          job.name,
          hostId,
          done.map((f) => f.lease.token),
        ),
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
   * The run ended while the handler still ran (past shutdownTimeoutMs): the
   * range goes out again at once, at the next attempt, so a handler that runs
   * on here and the one that takes it over can tell. Never dead-lettered.
   */
  async interrupted(lease: Lease, reason: string): Promise<void> {
    const { job, store, hostId, logger } = this.d;
    const error = { message: `${reason} while the handler was still running` };
    await retrying(
      () =>
        store.fail(job.name, hostId, lease.token, {
          error,
          dead: false,
          retryInMs: 0,
        }),
      logger,
      `fail for job "${job.name}"`,
    );
  }

  /** `delayMs` overrides the backoff (0: a crashed worker's range goes out again at once). */
  async failed(
    lease: Lease,
    error: WireError,
    delayMs?: number,
  ): Promise<void> {
    const { job, runId, store, hostId, options, logger, events } = this.d;
    const dead = lease.attempt >= options.maxAttempts;
    const retryInMs = delayMs ?? backoff(lease.attempt, options);
    const outcome = await retrying(
      () =>
        store.fail(job.name, hostId, lease.token, { error, dead, retryInMs }),
      logger,
      `fail for job "${job.name}"`,
    );
    const what =
      outcome === 'dead'
        ? `sent to the dead letters after ${lease.attempt} attempts`
        : outcome === 'retry'
          ? `will be retried in ${retryInMs} ms`
          : 'its lease was already lost';
    logger.warn(
      `Job "${job.name}": ${describeLease(lease)} failed and ${what}: ${error.message}`,
    );
    events.emit(
      ParallelWorkerEvent.RangeFailed,
      new RangeFailedEvent(job.name, runId, rangeInfo(lease), error, outcome),
    );
  }

  /** The run's summary: the store's counters for the whole run (all hosts), this host's share. */
  async summary(
    status: RunStatus,
    error: string | undefined,
    pool: WorkerPool,
    durationMs: number,
  ): Promise<RunSummary> {
    const { job, runId, store } = this.d;
    const s = await store.state(job.name).catch(() => undefined);
    const c = s && s.runId === runId ? s.counters : undefined;
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
      ...(error !== undefined ? { error } : {}),
      host: { ids: this.ids, ranges: this.ranges },
    };
  }
}
