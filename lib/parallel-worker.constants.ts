/** Job name used when a decorator or `run()` names none. */
export const DEFAULT_JOB = 'default';

export const RANGE_LOADER_METADATA = 'parallel-worker:range-loader';
export const RANGE_LOADER_OPTIONS_METADATA =
  'parallel-worker:range-loader-options';
export const RANGE_HANDLER_METADATA = 'parallel-worker:range-handler';
export const RANGE_TOTAL_METADATA = 'parallel-worker:range-total';
export const RANGE_PARTITIONS_METADATA = 'parallel-worker:range-partitions';

/** Environment a forked worker is started with; read by `ParallelWorker.isWorker()` and the worker role. */
export const ENV_WORKER_ID = 'PARALLEL_WORKER_ID';
export const ENV_CONCURRENCY = 'PARALLEL_WORKER_CONCURRENCY';

export const LOG_CONTEXT = 'ParallelWorker';
