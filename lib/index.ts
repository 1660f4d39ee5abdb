export * from './db-health';
export * from './decorators';
export * from './errors';
export * from './fence';
export type {
  HealthContext,
  HealthIndicator,
  HealthSignal,
} from './interfaces/health-indicator.interface';
export type {
  ID,
  LoadContext,
  LoaderResult,
  ParamsValidator,
  Range,
  RangeContext,
} from './interfaces/range.interface';
export type {
  JobState,
  JobStatus,
  PartitionStatus,
  RunOptions,
  RunStatus,
  RunSummary,
} from './interfaces/run-summary.interface';
export type {
  IdOrderOption,
  ParallelWorkerLogLevel,
  ParallelWorkerOptions,
  RedisConnectionOptions,
  RedisLikeClient,
} from './interfaces/parallel-worker-options.interface';
export { ParallelWorker } from './parallel-worker';
export type {
  ThrottleContext,
  ThrottleFn,
} from './interfaces/throttle.interface';
export * from './parallel-worker.events';
export { ParallelWorkerModule } from './parallel-worker.module';
export * from './store';
export { RedisStore } from './store/redis.store';
