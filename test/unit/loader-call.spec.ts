import AsyncLock from 'async-lock';
import type { ID } from '../../lib';
import type { JobDefinition } from '../../lib/job.registry';
import { resolveOptions } from '../../lib/parallel-worker.options';
import { ModuleLogger } from '../../lib/parallel-worker.logger';
import {
  loadRanges,
  type LoaderCall,
  RunFailure,
} from '../../lib/run/loader-call';

/** A loader over ids 1..100, 10 a call, each call taking the next of `durations` (ms; Infinity hangs). */
function call(
  durations: number[],
  options = {},
): LoaderCall & { cursors: (ID | null)[] } {
  const cursors: (ID | null)[] = [];
  const job: JobDefinition = {
    name: 'items',
    loader: {
      name: 'Items.next',
      call: (cursor: ID | null) => {
        cursors.push(cursor);
        const ms = durations.shift() ?? 0;
        const from = Number(cursor ?? 0);
        const ids = Array.from(
          { length: Math.min(10, 100 - from) },
          (_, i) => from + i + 1,
        );
        return ms === Infinity
          ? new Promise(() => undefined)
          : new Promise((r) => setTimeout(() => r(ids), ms));
      },
    },
    handler: { name: 'Items.handle', call: () => undefined },
  };
  return {
    job,
    runId: 'run-1',
    lock: new AsyncLock(),
    cursors,
    options: resolveOptions({
      workers: 0,
      loaderTimeoutMs: 50,
      retryBackoffMs: 10,
      ...options,
    }),
    logger: new ModuleLogger('test', { enabled: false, level: 'info' }),
    running: () => true,
    limit: () => 10,
  };
}

describe('loadRanges', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('loads consecutive ranges under one timer that only times out a call that itself ran past loaderTimeoutMs', async () => {
    // Six calls of 20 ms: the batch runs 120 ms, past loaderTimeoutMs (50 ms), yet no call does.
    const c = call([20, 20, 20, 20, 20, 20]);
    const loaded = loadRanges(c, null, 6, () => true);
    await jest.advanceTimersByTimeAsync(200);

    expect(await loaded).toMatchObject({ cursor: 60, exhausted: false });
    expect((await loaded)?.ranges.map((r) => [r.prev, r.lastId])).toEqual([
      [null, 10],
      [10, 20],
      [20, 30],
      [30, 40],
      [40, 50],
      [50, 60],
    ]);
    expect(c.cursors).toEqual([null, 10, 20, 30, 40, 50]);
  });

  it('ends the batch at a call that hangs, keeping what came before; alone, that call is retried after a backoff', async () => {
    const c = call([5, 5, Infinity, Infinity, 5]);
    const first = loadRanges(c, null, 10, () => true);
    await jest.advanceTimersByTimeAsync(100);
    expect(await first).toMatchObject({ cursor: 20, exhausted: false });
    expect((await first)?.ranges).toHaveLength(2);

    // The next batch starts with the call that hung: it hangs once more, then goes through.
    const second = loadRanges(c, 20, 1, () => true);
    await jest.advanceTimersByTimeAsync(200);
    expect(await second).toMatchObject({ cursor: 30, exhausted: false });
    expect(c.cursors).toEqual([null, 10, 20, 20, 20]);
  });

  it('says exhausted at the end of the data, and fails the run after maxAttempts', async () => {
    const c = call([]);
    const end = loadRanges(c, 90, 5, () => true);
    await jest.advanceTimersByTimeAsync(10);
    expect(await end).toMatchObject({ cursor: 100, exhausted: true });
    expect((await end)?.ranges).toHaveLength(1);

    const hangs = call([Infinity, Infinity, Infinity]);
    const failed = loadRanges(hangs, null, 5, () => true).catch((e) => e);
    await jest.advanceTimersByTimeAsync(1000);
    const error = await failed;
    expect(error).toBeInstanceOf(RunFailure);
    expect(error.message).toBe(
      'the range loader Items.next failed 3 times after cursor null; last error: it did not return within loaderTimeoutMs (50 ms)',
    );
  });
});
