import type { ID } from './interfaces/range.interface';
import type { RunSummary } from './interfaces/run-summary.interface';

/** Event names, emitted through `@nestjs/event-emitter` when the app has it. */
export enum ParallelWorkerEvent {
  WorkerExited = 'parallel-worker.worker-exited',
  BeforeStop = 'parallel-worker.before-stop',
  RangeCompleted = 'parallel-worker.range-completed',
  RangeFailed = 'parallel-worker.range-failed',
  RunCompleted = 'parallel-worker.run-completed',
  /** A health indicator said hold: no host hands out a new range until it ends. */
  RunHeld = 'parallel-worker.run-held',
  /** A health indicator threw, gave a bad answer or did not answer within healthTimeoutMs. */
  HealthUnknown = 'parallel-worker.health-unknown',
}

/** A worker process exited (drained, crashed or killed). */
export class WorkerExitedEvent {
  constructor(
    readonly job: string,
    readonly runId: string,
    readonly workerId: string,
    readonly pid: number | undefined,
    readonly code: number | null,
    readonly signal: string | null,
  ) {}
}

/** A graceful stop finished handing back ranges; the run is about to resolve as stopped. */
export class BeforeStopEvent {
  constructor(
    readonly job: string,
    readonly runId: string,
    readonly summary: RunSummary,
  ) {}
}

/** Which ids a range event is about. */
export interface RangeInfo {
  token: number;
  attempt: number;
  count: number;
  firstId: ID | undefined;
  lastId: ID;
}

/**
 * A range was handled. `counted` is false when its lease had been lost
 * before (it was handed out again, so it is not counted twice).
 */
export class RangeCompletedEvent {
  constructor(
    readonly job: string,
    readonly runId: string,
    readonly range: RangeInfo,
    readonly workerId: string,
    readonly counted: boolean,
    /** How long the handler ran. */
    readonly durationMs?: number,
  ) {}
}

/**
 * A range failed: `outcome` says whether it will be retried, went to the
 * dead letters, or was stale (its lease had been taken over already).
 */
export class RangeFailedEvent {
  constructor(
    readonly job: string,
    readonly runId: string,
    readonly range: RangeInfo,
    readonly error: { message: string; stack?: string },
    readonly outcome: 'retry' | 'dead' | 'stale',
  ) {}
}

/** A run ended (completed, stopped or failed). */
export class RunCompletedEvent {
  constructor(
    readonly job: string,
    readonly runId: string,
    readonly summary: RunSummary,
  ) {}
}

/** This host put the run on hold for `holdMs` because `indicator` said so. */
export class RunHeldEvent {
  constructor(
    readonly job: string,
    readonly runId: string,
    readonly indicator: string,
    readonly reason: string,
    readonly holdMs: number,
  ) {}
}

/** A health indicator could not tell (a throw, a bad answer, no answer in time); not a hold unless `holdOnUnknown`. */
export class HealthUnknownEvent {
  constructor(
    readonly job: string,
    readonly runId: string,
    readonly indicator: string,
    readonly reason: string,
  ) {}
}
