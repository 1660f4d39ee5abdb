import type AsyncLock from 'async-lock'
import { toWireError } from '../cluster/range-executor'
import { InvalidRangeError } from '../errors/invalid-range.error'
import type { JobDefinition } from '../job.registry'
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface'
import type { ID } from '../interfaces/range.interface'
import type { ModuleLogger } from '../parallel-worker.logger'
import type { StoredRange } from '../store/coordination-store.interface'
import { backoff } from './backoff'
import { toStoredRange } from './range-validator'

/** The run cannot go on: bad loader output, or a loader that keeps failing. */
export class RunFailure extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause })
  }
}

export interface LoaderCall {
  job: JobDefinition
  runId: string
  options: ResolvedParallelWorkerOptions
  lock: AsyncLock
  logger: ModuleLogger
  /** False once the run is ending: a retry is not worth waiting for then. */
  running: () => boolean
  /** The range size to suggest now. */
  limit: () => number
}

/**
 * Calls the job's loader after `cursor` (one call at a time per host) and
 * checks its output. A throw or a hang past `loaderTimeoutMs` is retried
 * with backoff up to `maxAttempts`; then, or on bad output, `RunFailure`.
 * Undefined when the run ended while waiting.
 */
export async function callLoader(c: LoaderCall, cursor: ID | null): Promise<StoredRange | null | undefined> {
  const { job, runId, options, lock, logger } = c
  for (let attempt = 1; ; attempt++) {
    let value: unknown
    try {
      // The timeout lives inside the lock, so a hung loader does not hold the lock forever.
      value = await lock.acquire(job.name, () => withTimeout(
        Promise.resolve().then(() => job.loader.call(cursor, { job: job.name, runId, limit: c.limit() })),
        options.loaderTimeoutMs,
        `it did not return within loaderTimeoutMs (${options.loaderTimeoutMs} ms)`,
      ), options.lockOptions)
    } catch (e) {
      const message = toWireError(e).message
      if (attempt >= options.maxAttempts) {
        throw new RunFailure(`the range loader ${job.loader.name} failed ${attempt} times after cursor ${cursor}; last error: ${message}`, e)
      }
      const delay = backoff(attempt, options)
      logger.warn(`Job "${job.name}": the range loader ${job.loader.name} failed after cursor ${cursor} (attempt ${attempt} of ${options.maxAttempts}); retrying in ${delay} ms: ${message}`)
      await new Promise(r => setTimeout(r, delay))
      if (!c.running()) return undefined
      continue
    }
    try {
      return toStoredRange(job.name, cursor, value)
    } catch (e) {
      if (e instanceof InvalidRangeError) throw new RunFailure(e.message, e)
      throw e
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  if (ms <= 0) return p
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}
