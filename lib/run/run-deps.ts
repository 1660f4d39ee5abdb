import type AsyncLock from 'async-lock';
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { JobDefinition } from '../job.registry';
import type { ModuleLogger } from '../parallel-worker.logger';
import type { CoordinationStore } from '../store/coordination-store.interface';
import type { Clock } from './clock';
import type { TraceParent } from '../cluster/ipc.messages';

/** Where a run's events go (EventEmitter2 when the app has it, and the metrics module). */
export interface EventSink {
  emit(event: string, payload: unknown): void;
}

/** What every unit of one run on this host shares. */
export interface RunDeps {
  job: JobDefinition;
  runId: string;
  hostId: string;
  store: CoordinationStore;
  options: ResolvedParallelWorkerOptions;
  logger: ModuleLogger;
  events: EventSink;
  lock: AsyncLock;
  /** The run's params (`ctx.params`), deep-frozen: one call cannot change what the next one sees. */
  params?: Record<string, unknown>;
  /** What the history record says about how the run started. */
  start?: { startedBy?: string; host?: string };
  /** The run's span (OpenTelemetry), for the workers' range spans. */
  trace?: TraceParent;
  /** When `run()` was called, on `clock`. */
  startedAt: number;
  /** Monotonic time for deadlines and timeouts; tests pass their own. Default `performance.now()`. */
  clock?: Clock;
}
