import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { ModuleLogger } from '../parallel-worker.logger';

/** Retry delay after `attempt` failures: exponential, capped, with equal jitter (half fixed, half random). */
export function backoff(
  attempt: number,
  o: Pick<
    ResolvedParallelWorkerOptions,
    'retryBackoffMs' | 'maxRetryBackoffMs'
  >,
): number {
  const base = Math.min(
    o.maxRetryBackoffMs,
    o.retryBackoffMs * 2 ** Math.max(0, attempt - 1),
  );
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

/** How long store operations are retried while the store is unreachable. */
const STORE_OUTAGE_MS = 30_000;

/** Runs a store operation, retrying it while the store is unreachable for a while. */
export async function retrying<T>(
  op: () => Promise<T>,
  logger: ModuleLogger,
  what: string,
): Promise<T> {
  const deadline = performance.now() + STORE_OUTAGE_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (performance.now() >= deadline) throw e;
      const delay = Math.min(2000, 50 * 2 ** attempt);
      if (attempt === 1)
        logger.warn(
          `The coordination store failed (${what}): ${(e as Error).message}; retrying for up to ${STORE_OUTAGE_MS / 1000} s.`,
        );
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
