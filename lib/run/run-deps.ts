import type AsyncLock from 'async-lock';
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { JobDefinition } from '../job.registry';
import type { ModuleLogger } from '../parallel-worker.logger';
import type { JobStore } from '../store/job-store.interface';
import type { Clock } from './clock';

/** Where a run's events go (EventEmitter2 when the app has it, and the metrics module). */
export interface EventSink {
  emit(event: string, payload: unknown): void;
}

/** What every unit of one run on this host shares. */
export interface RunDeps {
  job: JobDefinition;
  runId: string;
  hostId: string;
  /** The job's handle in the store. */
  store: JobStore;
  options: ResolvedParallelWorkerOptions;
  logger: ModuleLogger;
  events: EventSink;
  lock: AsyncLock;
  /** The run's params (`ctx.params`), deep-frozen: one call cannot change what the next one sees. */
  params?: Record<string, unknown>;
  /** What `run(job, { startedBy })` said on this host (the history record's, when the store lost the run's own). */
  startedBy?: string;
  /** When `run()` was called, on `clock`. */
  startedAt: number;
  /** Monotonic time for deadlines and timeouts; tests pass their own. Default `performance.now()`. */
  clock?: Clock;
}
