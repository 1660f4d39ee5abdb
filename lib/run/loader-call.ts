import type AsyncLock from 'async-lock';
import { toWireError } from '../cluster/wire-error';
import { InvalidRangeError } from '../errors/invalid-range.error';
import type { JobDefinition } from '../job.registry';
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { ID } from '../interfaces/range.interface';
import type { ModuleLogger } from '../parallel-worker.logger';
import type { StoredRange } from '../store/coordination-store.interface';
import { backoff } from './backoff';
import { OUTSIDE_PARTITION } from '../parallel-worker.messages';
import { idOrder, type IdOrder } from './id-order';
import { toStoredRange } from './range-validator';

/** The run cannot go on: bad loader output, or a loader that keeps failing. */
export class RunFailure extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

export interface LoaderCall {
  job: JobDefinition;
  runId: string;
  options: ResolvedParallelWorkerOptions;
  lock: AsyncLock;
  logger: ModuleLogger;
  /** False once the run is ending: a retry is not worth waiting for then. */
  running: () => boolean;
  /** The range size to suggest now. */
  limit: () => number;
  /** The order the loader's ids must come in (the `idOrder` option). */
  order?: IdOrder;
  /** The partition loaded (its ids must not go past `upTo`); none for a job without partitions. */
  partition?: LoadPartition;
  /** The run's params (`ctx.params`). */
  params?: Record<string, unknown>;
}

/** A partition as the loader sees it (`ctx.partition`). */
export interface LoadPartition {
  index: number;
  count: number;
  after: ID | null;
  upTo: ID | null;
}

/** Consecutive ranges loaded after one cursor. */
export interface Loaded {
  ranges: StoredRange[];
  /** The cursor after the last of them. */
  cursor: ID | null;
  /** The loader said there is nothing after `cursor`. */
  exhausted: boolean;
}

/**
 * Calls the job's loader after `from`, again after each range it returns,
 * up to `max` ranges while `more()` says so, holding the local loader lock
 * once for the batch, and checks each output. A call that throws or hangs
 * past `loaderTimeoutMs` ends the batch with what came before it; alone, it
 * is retried with backoff up to `maxAttempts`, then fails the run
 * (`RunFailure`), as bad output does at once. Undefined when the run ended
 * while waiting to retry.
 */
export async function loadRanges(
  c: LoaderCall,
  from: ID | null,
  max: number,
  more: () => boolean,
): Promise<Loaded | undefined> {
  const { job, runId, options, lock, logger, partition, params } = c;
  const order = c.order ?? idOrder('numeric');
  for (let attempt = 1; ; attempt++) {
    const loaded: Loaded = { ranges: [], cursor: from, exhausted: false };
    const timeout = new CallTimeout(
      options.loaderTimeoutMs,
      `it did not return within loaderTimeoutMs (${options.loaderTimeoutMs} ms)`,
    );
    try {
      // The timeout lives inside the lock, so a hung loader does not hold the lock forever.
      // One loader call at a time per partition (per job without partitions), on this host.
      await lock.acquire(
        partition ? `${job.name}#${partition.index}` : job.name,
        async () => {
          while (loaded.ranges.length < max) {
            const cursor = loaded.cursor;
            const value = await timeout.run(() =>
              job.loader.call(cursor, {
                job: job.name,
                runId,
                limit: c.limit(),
                ...(params && { params }),
                ...(partition && { partition: { ...partition } }),
              }),
            );
            const range = toStoredRange(job.name, cursor, value, order);
            if (range === null) return void (loaded.exhausted = true);
            if (
              partition &&
              partition.upTo !== null &&
              order.compare(range.lastId, partition.upTo) > 0
            ) {
              const past =
                range.ids.find(
                  (id) => order.compare(id, partition.upTo as ID) > 0,
                ) ?? range.lastId;
              throw new InvalidRangeError(
                job.name,
                value,
                OUTSIDE_PARTITION(job.name, past, partition),
              );
            }
            loaded.ranges.push({ ...range, run: runId });
            loaded.cursor = range.lastId;
            if (!more()) return;
          }
        },
        options.lockOptions,
      );
      return loaded;
    } catch (e) {
      if (e instanceof InvalidRangeError) throw new RunFailure(e.message, e);
      // What loaded before the failing call is good; the call is retried first thing in the next batch.
      if (loaded.ranges.length) return loaded;
      const message = toWireError(e).message;
      if (attempt >= options.maxAttempts) {
        throw new RunFailure(
          `the range loader ${job.loader.name} failed ${attempt} times after cursor ${from}; last error: ${message}`,
          e,
        );
      }
      const delay = backoff(attempt, options);
      logger.warn(
        `Job "${job.name}": the range loader ${job.loader.name} failed after cursor ${from} (attempt ${attempt} of ${options.maxAttempts}); retrying in ${delay} ms: ${message}`,
      );
      await new Promise((r) => setTimeout(r, delay));
      if (!c.running()) return undefined;
    } finally {
      timeout.clear();
    }
  }
}

/**
 * Rejects the call in progress once it ran `ms`: one timer for a batch of
 * calls, re-armed only when it fires early, instead of one per call.
 */
class CallTimeout {
  private timer?: NodeJS.Timeout;
  private since = 0;
  private reject?: (e: Error) => void;

  constructor(
    private readonly ms: number,
    private readonly message: string,
  ) {}

  run<T>(call: () => T | Promise<T>): Promise<T> {
    if (this.ms <= 0) return Promise.resolve().then(call);
    this.since = performance.now();
    this.timer ??= setTimeout(this.check, this.ms);
    return new Promise<T>((resolve, reject) => {
      this.reject = reject;
      Promise.resolve().then(call).then(resolve, reject);
    });
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.reject = undefined;
  }

  private readonly check = (): void => {
    const left = this.since + this.ms - performance.now();
    if (left > 0) {
      this.timer = setTimeout(this.check, left);
      return;
    }
    this.timer = undefined;
    // Rejecting a call that already settled does nothing.
    this.reject?.(new Error(this.message));
  };
}
