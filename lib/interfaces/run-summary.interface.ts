/** Final state of a run. */
export type RunStatus = 'completed' | 'stopped' | 'failed';

/** What `ParallelWorker.run()` resolves with (or what a `RunFailedError` carries). */
export interface RunSummary {
  job: string;
  runId: string;
  status: RunStatus;
  /** Ids whose range completed, over all hosts. */
  ids: number;
  ranges: { completed: number; retried: number; dead: number };
  workers: { started: number; restarted: number };
  /** From `run()` (worker start-up included) to its end. */
  durationMs: number;
  /** Why the run failed. */
  error?: string;
  /** How long the run was on hold (the `health` option), all hosts. */
  heldMs: number;
  /** This host's share. */
  host: { ids: number; ranges: number };
}

/** State of a job as `status()` reports it. */
export type JobState =
  | 'idle'
  | 'running'
  | 'paused'
  | 'stopping'
  | 'completed'
  | 'stopped'
  | 'failed';

/** What `ParallelWorker.status()` returns. */
export interface PartitionStatus {
  index: number;
  after: import('./range.interface').ID | null;
  upTo: import('./range.interface').ID | null;
  cursor: import('./range.interface').ID | null;
  /** Ids handed out from it in this run. */
  ids: number;
  /** Its loader returned nothing more in this run. */
  exhausted: boolean;
  /**
   * How far its cursor is through its bounds, 0 to 100, for integer ids with
   * both bounds set (100 once exhausted); the key space, not the rows, so
   * gaps in the ids make it jump.
   */
  percent?: number;
}

export interface JobStatus {
  job: string;
  state: JobState;
  runId: string | null;
  /** Last id handed out (the resume point); for a job with partitions, each has its own in `partitions`. */
  cursor: import('./range.interface').ID | null;
  /** A job with partitions: each one's bounds `(after, upTo]`, cursor, ids handed out in this run, and whether its loader is done. */
  partitions?: PartitionStatus[];
  ids: { done: number };
  ranges: { done: number; leased: number; retrying: number; dead: number };
  /** Ids per second over the last minute. */
  rate: number;
  /** Known only when the job has a `@RangeTotal`. */
  total?: number;
  /** Ids done of `total`, 0 to 100. */
  percent?: number;
  /** Time left at the current rate. */
  etaMs?: number;
  /** Why the run failed. */
  error?: string;
  startedAt: number | null;
  /**
   * The run's hold while it lasts (the `health` option): why, the indicator
   * that said so, and from when until when (ms since the epoch).
   */
  hold?: { reason: string; indicator: string; since: number; until: number };
  /** How long the run has been on hold in all. */
  heldMs?: number;
}

/** Options of `ParallelWorker.run()`. */
export interface RunOptions {
  /** Move the cursor before the run: `null` starts over from the first row. Omit to continue from the stored cursor. */
  from?: import('./range.interface').ID | null;
  /**
   * The run's arguments (a plain object of JSON values), stored with the run:
   * the loader, the handler and `@RangeTotal` get them as `ctx.params` on
   * every host and worker. A host whose run() would join the run with other
   * params is refused (`RunRefusedError`).
   */
  params?: Record<string, unknown>;
  /** Who or what started the run (a user, `'cron'`), kept in its history record. */
  startedBy?: string;
}
