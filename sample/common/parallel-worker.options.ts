import type { Redis } from 'ioredis';
import { intFromEnv } from './env';

/**
 * The samples' `ParallelWorkerModule` options, from the environment:
 * `SAMPLE_WORKERS` processes per host (default 4), and Redis as the store
 * when `REDIS_URL` is set, so several hosts can share one run. Without it the
 * store is in memory and the run belongs to this host alone.
 */
export function parallelWorkerOptions(redis: Redis | null) {
  return {
    ...(redis && { storage: redis }),
    workers: intFromEnv('SAMPLE_WORKERS', 4),
  };
}
