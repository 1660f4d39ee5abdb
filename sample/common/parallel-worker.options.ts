import type { Redis } from 'ioredis';
import type { ParallelWorkerOptions } from 'nestjs-parallel-worker';
import { intFromEnv } from './env';

/**
 * The samples' `ParallelWorkerModule` options, from the environment:
 * `SAMPLE_WORKERS` processes per host (default 4), and Redis as the store
 * when `REDIS_URL` is set, so several hosts can share one run. Without it the
 * state is in the default store, `parallel-worker.db` in the working
 * directory: a run stopped with Ctrl+C resumes with `SAMPLE_SEED=0`.
 * `SAMPLE_RANGE_SIZE` fixes the size of a range (default: adaptive, about
 * 500 ms of work each) and `SAMPLE_STORAGE_KEY` the key prefix in the store
 * (default `parallel-worker`), so several copies can share one Redis.
 */
export function parallelWorkerOptions(
  redis: Redis | null,
): ParallelWorkerOptions {
  const rangeSize = intFromEnv('SAMPLE_RANGE_SIZE', 0);
  const storageKey = process.env.SAMPLE_STORAGE_KEY;
  return {
    ...(redis && { storage: redis }),
    ...(storageKey && { storageKey }),
    ...(rangeSize > 0 && { rangeSize }),
    workers: intFromEnv('SAMPLE_WORKERS', 4),
  };
}
