import { Injectable, Logger, Module, Scope } from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import {
  type JobStore,
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerEvent,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  MemoryStore,
  type RangeCompletedEvent,
  type RangeContext,
  RangeHandler,
  RangeLoader,
  RangePartitions,
  RangeTotal,
  RunCompletedEvent,
  RunFailedError,
  RunRefusedError,
  UnknownJobError,
  InvalidRangeError,
} from '../../lib';
import { replaceCalls } from '../support/replace-calls';
import {
  ENV_WORKER_ID,
  LOG_CONTEXT,
} from '../../lib/parallel-worker.constants';
import { ModuleLogger } from '../../lib/parallel-worker.logger';

/** In-memory "table" for in-process (workers: 0) runs; the cluster runs are in test/e2e. */
@Injectable()
class Numbers {
  static rows = 0;
  static handled: ID[] = [];
  static contexts: RangeContext[] = [];
  static loads: LoadContext[] = [];
  static loadedAt: number[] = [];
  static delayMs = 0;

  @RangeLoader('numbers')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    Numbers.loads.push(ctx);
    Numbers.loadedAt.push(Date.now());
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, Numbers.rows - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('numbers')
  async handle({ idsRange }: Range, ctx: RangeContext): Promise<void> {
    Numbers.contexts.push(ctx);
    if (Numbers.delayMs)
      await new Promise((r) => setTimeout(r, Numbers.delayMs));
    Numbers.handled.push(...idsRange);
  }
}

@Injectable()
class Listener {
  static completed: RangeCompletedEvent[] = [];
  static runs: RunCompletedEvent[] = [];

  @OnEvent(ParallelWorkerEvent.RangeCompleted)
  onRange(e: RangeCompletedEvent): void {
    Listener.completed.push(e);
  }

  @OnEvent(ParallelWorkerEvent.RunCompleted)
  onRun(e: RunCompletedEvent): void {
    Listener.runs.push(e);
  }
}

const inline: ParallelWorkerOptions = {
  workers: 0,
  storage: 'memory',
  rangeSize: 10,
  logging: { enabled: false },
};

async function app(imports: any[], providers: any[] = [Numbers]) {
  const moduleRef = await Test.createTestingModule({
    imports,
    providers,
  }).compile();
  return moduleRef.init();
}

beforeEach(() => {
  Numbers.rows = 95;
  Numbers.handled = [];
  Numbers.contexts = [];
  Numbers.loads = [];
  Numbers.loadedAt = [];
  Numbers.delayMs = 0;
  Listener.completed = [];
  Listener.runs = [];
});

describe('ParallelWorkerModule (in process, workers: 0)', () => {
  it('runs a job over every id exactly once and returns the summary', async () => {
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    const summary = await a.get(ParallelWorker).run('numbers');
    expect(summary).toMatchObject({
      job: 'numbers',
      status: 'completed',
      ids: 95,
      ranges: { completed: 10, retried: 0, dead: 0 },
      host: { ids: 95, ranges: 10 },
    });
    expect([...Numbers.handled].sort((x, y) => Number(x) - Number(y))).toEqual(
      Array.from({ length: 95 }, (_, i) => i + 1),
    );
    expect(Numbers.loads[0]).toEqual({
      job: 'numbers',
      runId: summary.runId,
      limit: 10,
    });
    expect(Numbers.contexts[0]).toMatchObject({
      job: 'numbers',
      runId: summary.runId,
      attempt: 1,
    });
    expect(Numbers.contexts[0].signal.aborted).toBe(false);
    // A new token per hand-out, increasing (their floor, store time in ms x 1000, is the store contract's).
    const tokens = Numbers.contexts.map((c) => c.token);
    expect(new Set(tokens).size).toBe(10);
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
    await a.close();
  });

  it("runs before app.init(), as an HTTP app's worker branch calls it right after NestFactory.create()", async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [ParallelWorkerModule.forRoot(inline)],
      providers: [Numbers],
    }).compile();
    expect((await moduleRef.get(ParallelWorker).run('numbers')).ids).toBe(95);
    await moduleRef.close();
  });

  it('emits typed events through EventEmitter2 when the app has it', async () => {
    const a = await app(
      [EventEmitterModule.forRoot(), ParallelWorkerModule.forRoot(inline)],
      [Numbers, Listener],
    );
    const summary = await a.get(ParallelWorker).run();
    expect(Listener.completed).toHaveLength(10);
    expect(Listener.completed[0]).toMatchObject({
      job: 'numbers',
      runId: summary.runId,
      counted: true,
      range: { attempt: 1, count: 10, firstId: 1, lastId: 10 },
    });
    expect(Listener.runs).toEqual([
      expect.objectContaining({ job: 'numbers', summary }),
    ]);
    await a.close();
  });

  it('continues from the stored cursor on the next run and starts over with from: null', async () => {
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    const pw = a.get(ParallelWorker);
    await pw.run('numbers');
    Numbers.rows = 120;
    Numbers.handled = [];
    expect((await pw.run('numbers')).ids).toBe(25);
    expect(Numbers.handled[0]).toBe(96);
    expect((await pw.status('numbers')).cursor).toBe(120);
    expect((await pw.run('numbers', { from: null })).ids).toBe(120);
    await a.close();
  });

  it('stops gracefully and the next run resumes with nothing lost or repeated', async () => {
    Numbers.delayMs = 20;
    const a = await app([
      ParallelWorkerModule.forRoot({ ...inline, concurrency: 2 }),
    ]);
    const pw = a.get(ParallelWorker);
    const running = pw.run('numbers');
    await new Promise((r) => setTimeout(r, 50));
    await pw.stop('numbers');
    const stopped = await running;
    expect(stopped.status).toBe('stopped');
    expect(stopped.ids).toBeLessThan(95);
    expect((await pw.status('numbers')).state).toBe('stopped');
    const resumed = await pw.run('numbers');
    expect(resumed.status).toBe('completed');
    expect([...Numbers.handled].sort((x, y) => Number(x) - Number(y))).toEqual(
      Array.from({ length: 95 }, (_, i) => i + 1),
    );
    expect((await pw.status('numbers')).state).toBe('completed');
    await a.close();
  });

  it('joins a run already going on this host instead of starting a second one', async () => {
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    const pw = a.get(ParallelWorker);
    const [one, two] = await Promise.all([
      pw.run('numbers'),
      pw.run('numbers'),
    ]);
    expect(two).toBe(one);
    expect(Numbers.handled).toHaveLength(95);
    await a.close();
  });

  it('refuses an unknown job at once, naming the jobs it knows', async () => {
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    await expect(a.get(ParallelWorker).run('users')).rejects.toThrow(
      UnknownJobError,
    );
    await expect(a.get(ParallelWorker).run('users')).rejects.toThrow(
      'No job "users" is declared. Declare it with @RangeLoader(\'users\') and @RangeHandler(\'users\'), or run one of: "numbers".',
    );
    await a.close();
  });

  it('passes the loader payload and the cursor before the range to the handler', async () => {
    const seen: unknown[] = [];
    @Injectable()
    class Shards {
      @RangeLoader('shards')
      next(lastId: ID | null) {
        return lastId === null
          ? { lastId: 10n, idsRange: [3n, 7n], shard: 'eu', meta: { n: 1 } }
          : null;
      }

      @RangeHandler('shards')
      handle(range: Range) {
        seen.push(range);
      }
    }
    const a = await app([ParallelWorkerModule.forRoot(inline)], [Shards]);
    await a.get(ParallelWorker).run('shards');
    expect(seen).toEqual([
      { idsRange: ['3', '7'], lastId: null, shard: 'eu', meta: { n: 1 } },
    ]);
    await a.close();
  });

  it('retries a loader that hangs past loaderTimeoutMs, then goes on', async () => {
    let calls = 0;
    @Injectable()
    class Hangs {
      @RangeLoader('hangs')
      next(lastId: ID | null) {
        calls++;
        if (calls === 1) return new Promise(() => undefined);
        return lastId === null ? [1, 2] : [];
      }

      @RangeHandler('hangs') handle() {}
    }
    const a = await app(
      [
        ParallelWorkerModule.forRoot({
          ...inline,
          loaderTimeoutMs: 50,
          retryBackoffMs: 1,
        }),
      ],
      [Hangs],
    );
    expect(await a.get(ParallelWorker).run('hangs')).toMatchObject({
      status: 'completed',
      ids: 2,
    });
    expect(calls).toBe(3);
    await a.close();
  });

  it('fails the run with the last error when the loader keeps failing', async () => {
    @Injectable()
    class Broken {
      @RangeLoader('broken') next() {
        throw new Error('connection refused');
      }
      @RangeHandler('broken') handle() {}
    }
    const a = await app(
      [ParallelWorkerModule.forRoot({ ...inline, retryBackoffMs: 1 })],
      [Broken],
    );
    const error = await a
      .get(ParallelWorker)
      .run('broken')
      .catch((e) => e);
    expect(error).toBeInstanceOf(RunFailedError);
    expect(error.message).toMatch(
      /^Job "broken" failed \(run .+\): the range loader Broken.next failed 3 times after cursor null; last error: connection refused$/,
    );
    expect(error.summary).toMatchObject({
      job: 'broken',
      status: 'failed',
      ids: 0,
    });
    await a.close();
  });

  it("logs a failed run once, in one line; the stack travels as the RunFailedError's cause", async () => {
    @Injectable()
    class Unsorted {
      @RangeLoader('unsorted') next(lastId: number | null) {
        return lastId === null ? [3, 1, 2] : [];
      }
      @RangeHandler('unsorted') handle() {}
    }
    const errors = jest
      .spyOn(Logger.prototype, 'error')
      .mockImplementation(() => undefined);
    try {
      const a = await app(
        [
          ParallelWorkerModule.forRoot({
            ...inline,
            logging: { level: 'error' },
          }),
        ],
        [Unsorted],
      );
      const error = await a
        .get(ParallelWorker)
        .run('unsorted')
        .catch((e) => e);
      expect(error).toBeInstanceOf(RunFailedError);
      expect(error.cause).toBeInstanceOf(InvalidRangeError);
      const failed = errors.mock.calls.filter((c) =>
        String(c[0]).includes('Job "unsorted" failed'),
      );
      expect(failed).toHaveLength(1);
      expect(failed[0][1]).toBeUndefined(); // no stack printed with it
      await a.close();
    } finally {
      errors.mockRestore();
    }
  });

  it('aborts the signal of a handler past rangeTimeoutMs and retries its range', async () => {
    const aborted: number[] = [];
    @Injectable()
    class Slow {
      @RangeLoader('slow') next(lastId: ID | null) {
        return lastId === null ? [1, 2, 3] : [];
      }
      @RangeHandler('slow')
      async handle(_: Range, ctx: RangeContext) {
        if (ctx.attempt > 1) return;
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener(
            'abort',
            () => (aborted.push(ctx.attempt), resolve()),
          ),
        );
        throw ctx.signal.reason;
      }
    }
    const a = await app(
      [
        ParallelWorkerModule.forRoot({
          ...inline,
          rangeTimeoutMs: 50,
          retryBackoffMs: 1,
        }),
      ],
      [Slow],
    );
    expect(await a.get(ParallelWorker).run('slow')).toMatchObject({
      status: 'completed',
      ids: 3,
      // The range that timed out went to its retry as two: 1..2 and 3.
      ranges: { completed: 2, retried: 1 },
    });
    expect(aborted).toEqual([1]);
    await a.close();
  });

  it('hands dead letters out again with retryDead()', async () => {
    let poisoned = true;
    @Injectable()
    class Poison {
      @RangeLoader('poison') next(lastId: ID | null) {
        return lastId === null ? [1, 2] : lastId === 2 ? [3] : [];
      }
      @RangeHandler('poison')
      handle({ idsRange }: Range) {
        if (poisoned && idsRange.includes(1)) throw new Error('bad row 1');
      }
    }
    const a = await app(
      [ParallelWorkerModule.forRoot({ ...inline, retryBackoffMs: 1 })],
      [Poison],
    );
    const pw = a.get(ParallelWorker);
    expect(await pw.run('poison')).toMatchObject({
      status: 'completed',
      ids: 1,
      ranges: { completed: 1, retried: 2, dead: 1 },
    });
    expect((await pw.status('poison')).ranges.dead).toBe(1);
    poisoned = false;
    expect(await pw.retryDead('poison')).toBe(1);
    expect(await pw.run('poison')).toMatchObject({
      status: 'completed',
      ids: 2,
      ranges: { completed: 1, dead: 0 },
    });
    expect((await pw.status('poison')).ranges.dead).toBe(0);
    await a.close();
  });

  it('hands out nothing while the throttle says so, then goes on', async () => {
    let paused = true;
    const asked: boolean[] = [];
    const a = await app([
      ParallelWorkerModule.forRoot({
        ...inline,
        throttle: () => (asked.push(paused), paused ? 50 : false),
      }),
    ]);
    const run = a.get(ParallelWorker).run('numbers');
    await new Promise((r) => setTimeout(r, 200));
    const handledWhilePaused = [...Numbers.handled];
    paused = false;
    expect(await run).toMatchObject({ status: 'completed', ids: 95 });
    expect(handledWhilePaused).toEqual([]);
    expect(asked.slice(0, 2)).toEqual([true, true]);
    expect(asked).toContain(false);
    await a.close();
  });

  it('loads at most maxRangesPerSecond ranges in any second', async () => {
    Numbers.rows = 120;
    // The store's seconds are the ones permits count (a load starts a moment after its permit, maybe in the next second).
    const perSecond = new Map<number, number>();
    class Counting extends MemoryStore {
      private seen = 0;
      /** The time the store itself used for the permits (read again, a second may have turned in between). */
      protected override now(): number {
        return (this.seen = super.now());
      }

      override job(name: string): JobStore {
        const job = super.job(name);
        return replaceCalls(job, {
          takePermits: async (o) => {
            const taken = await job.takePermits(o);
            const second = Math.floor(this.seen / 1000);
            perSecond.set(second, (perSecond.get(second) ?? 0) + taken.granted);
            return taken;
          },
        });
      }
    }
    const a = await app([
      ParallelWorkerModule.forRoot({
        ...inline,
        storage: new Counting(),
        maxRangesPerSecond: 5,
      }),
    ]);
    expect(await a.get(ParallelWorker).run('numbers')).toMatchObject({
      status: 'completed',
      ids: 120,
    });
    // 12 ranges and the final empty load, each after its permit: at least three seconds, never more than 5 in one.
    // (Every load took a permit; a batch that a slow load cut short leaves the rest of its permits unused, so on a busy
    // machine the permits can outnumber the loads.)
    expect(
      [...perSecond.values()].reduce((x, y) => x + y, 0),
    ).toBeGreaterThanOrEqual(Numbers.loadedAt.length);
    expect(Numbers.loadedAt.length).toBe(13);
    expect(perSecond.size).toBeGreaterThanOrEqual(3);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(5);
    await a.close();
  });

  it('pauses and resumes a run: nothing is handed out while paused', async () => {
    Numbers.delayMs = 60;
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    const pw = a.get(ParallelWorker);
    const run = pw.run('numbers');
    await new Promise((r) => setTimeout(r, 100));
    await pw.pause('numbers');
    await new Promise((r) => setTimeout(r, 100));
    expect((await pw.status('numbers')).state).toBe('paused');
    const before = Numbers.handled.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(Numbers.handled.length).toBe(before);
    expect(before).toBeLessThan(95);
    await pw.resume('numbers');
    expect(await run).toMatchObject({ status: 'completed', ids: 95 });
    await a.close();
  });

  it('cancels a run: run() resolves stopped, the next run goes on from the cursor with nothing lost', async () => {
    Numbers.delayMs = 10;
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    const pw = a.get(ParallelWorker);
    const run = pw.run('numbers');
    await new Promise((r) => setTimeout(r, 30));
    await pw.cancel('numbers');
    expect(await run).toMatchObject({ status: 'stopped' });
    expect((await pw.status('numbers')).state).toBe('stopped');
    await expect(pw.pause('numbers')).rejects.toThrow(
      'Job "numbers" has no active run to pause.',
    );
    await expect(pw.resume('numbers')).rejects.toBeInstanceOf(RunRefusedError);
    Numbers.delayMs = 0;
    await pw.run('numbers');
    expect([...Numbers.handled].sort((x, y) => Number(x) - Number(y))).toEqual(
      Array.from({ length: 95 }, (_, i) => i + 1),
    );
    await a.close();
  });

  it('resets the cursor so the next run handles every row again', async () => {
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    const pw = a.get(ParallelWorker);
    await pw.run('numbers');
    expect((await pw.run('numbers')).ids).toBe(0);
    await pw.reset('numbers');
    expect((await pw.status('numbers')).cursor).toBeNull();
    expect((await pw.run('numbers')).ids).toBe(95);
    // Refused, typed, while this host runs it: nothing is moved.
    Numbers.delayMs = 10;
    const running = pw.run('numbers', { from: null });
    await new Promise((r) => setTimeout(r, 30));
    const refused = pw.reset('numbers');
    await expect(refused).rejects.toBeInstanceOf(RunRefusedError);
    await expect(refused).rejects.toThrow(
      'Job "numbers" is running on this host; cancel() it or wait for it before reset().',
    );
    Numbers.delayMs = 0;
    expect(await running).toMatchObject({ status: 'completed', ids: 95 });
    await a.close();
  });

  it('gives percent and ETA from a @RangeTotal, called once per run', async () => {
    const calls: string[] = [];
    @Injectable()
    class Counted extends Numbers {
      @RangeTotal('numbers')
      count({ runId }: { runId: string }) {
        calls.push(runId);
        return 95;
      }
    }
    Numbers.delayMs = 60;
    const a = await app([ParallelWorkerModule.forRoot(inline)], [Counted]);
    const pw = a.get(ParallelWorker);
    const run = pw.run('numbers');
    await new Promise((r) => setTimeout(r, 150));
    const mid = await pw.status('numbers');
    expect(mid).toMatchObject({ state: 'running', total: 95 });
    expect(mid.percent).toBeGreaterThan(0);
    expect(mid.percent).toBeLessThan(100);
    await new Promise((r) => setTimeout(r, 200));
    const later = await pw.status('numbers');
    expect(later.rate).toBeGreaterThan(0);
    expect(later.etaMs).toBeGreaterThanOrEqual(0);
    const summary = await run;
    expect(calls).toEqual([summary.runId]);
    expect(await pw.status('numbers')).toMatchObject({
      state: 'completed',
      total: 95,
      percent: 100,
      ids: { done: 95 },
    });
    await a.close();
  });

  it('stops a run that is still starting', async () => {
    const a = await app([ParallelWorkerModule.forRoot(inline)]);
    const pw = a.get(ParallelWorker);
    const run = pw.run('numbers');
    await pw.stop('numbers');
    expect((await run).status).toBe('stopped');
    await a.close();
  });

  it('hands out a text key of digits in its text order with idOrder: text, and refuses it by default naming the option', async () => {
    const KEYS = ['1', '10', '100', '2', '20', '3'];
    @Injectable()
    class Codes {
      @RangeLoader('codes') next(lastId: ID | null) {
        return KEYS.filter((k) => lastId === null || k > String(lastId)).slice(
          0,
          2,
        );
      }
      @RangeHandler('codes') handle({ idsRange }: Range) {
        Numbers.handled.push(...idsRange);
      }
    }
    const text = await app(
      [ParallelWorkerModule.forRoot({ ...inline, idOrder: 'text' })],
      [Codes],
    );
    expect(await text.get(ParallelWorker).run('codes')).toMatchObject({
      status: 'completed',
      ids: 6,
    });
    expect(Numbers.handled).toEqual(KEYS);
    await text.close();
    const numeric = await app([ParallelWorkerModule.forRoot(inline)], [Codes]);
    await expect(numeric.get(ParallelWorker).run('codes')).rejects.toThrow(
      /not sorted ascending: '2' at index 1 comes after '100'.*idOrder/,
    );
    await numeric.close();
  });

  it('stops waiting for an inline handler that ignores its aborted signal, and finishes the run', async () => {
    @Injectable()
    class Stubborn {
      @RangeLoader('stubborn') next(lastId: ID | null) {
        return lastId === null ? [1, 2] : lastId === 2 ? [3, 4] : [];
      }
      @RangeHandler('stubborn')
      async handle({ idsRange }: Range, ctx: RangeContext) {
        if (idsRange.includes(1) && ctx.attempt === 1)
          await new Promise(() => undefined);
        Numbers.handled.push(...idsRange);
      }
    }
    const a = await app(
      [
        ParallelWorkerModule.forRoot({
          ...inline,
          concurrency: 1,
          rangeTimeoutMs: 50,
          retryBackoffMs: 1,
        }),
      ],
      [Stubborn],
    );
    expect(await a.get(ParallelWorker).run('stubborn')).toMatchObject({
      status: 'completed',
      ids: 4,
      ranges: { retried: 1 },
    });
    expect([...Numbers.handled].sort()).toEqual([1, 2, 3, 4]);
    await a.close();
  });

  it('aborts handlers when leases cannot be renewed for leaseMs (the store does not answer)', async () => {
    const reasons: string[] = [];
    const attempts: number[] = [];
    class Unreachable extends MemoryStore {
      override job(name: string): JobStore {
        return replaceCalls(super.job(name), {
          heartbeat: () => Promise.reject(new Error('connection refused')),
        });
      }
    }
    @Injectable()
    class Long {
      @RangeLoader('long') next(lastId: ID | null) {
        return lastId === null ? [1] : [];
      }
      @RangeHandler('long')
      async handle(_: Range, ctx: RangeContext) {
        attempts.push(ctx.attempt);
        // The next attempt finishes well within leaseMs: no renewal is needed to count it.
        if (ctx.attempt > 1) return;
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve()),
        );
        reasons.push(String((ctx.signal.reason as Error).message));
      }
    }
    const a = await app(
      [
        ParallelWorkerModule.forRoot({
          ...inline,
          storage: new Unreachable(),
          leaseMs: 300,
          heartbeatMs: 50,
        }),
      ],
      [Long],
    );
    expect(await a.get(ParallelWorker).run('long')).toMatchObject({
      status: 'completed',
      ids: 1,
    });
    expect(reasons).toEqual([
      'lease may be lost: the coordination store did not answer',
    ]);
    // The handler returned on its aborted signal: its range was not done, and went out again (once more if the
    // quick attempt's answer took longer than leaseMs to land on a busy machine).
    expect(attempts.slice(0, 2)).toEqual([1, 2]);
    await a.close();
  });

  describe('forRootAsync', () => {
    @Injectable()
    class Config {
      get = () => inline;
    }

    @Module({ providers: [Config], exports: [Config] })
    class ConfigModule {}

    @Injectable()
    class OptionsFactory {
      create = () => inline;
    }

    it.each([
      [
        'useFactory',
        {
          imports: [ConfigModule],
          inject: [Config],
          useFactory: (c: Config) => c.get(),
        },
      ],
      ['useClass', { useClass: OptionsFactory }],
      ['useExisting', { imports: [ConfigModule], useExisting: Config as any }],
    ])('accepts %s', async (_kind, options) => {
      if (_kind === 'useExisting')
        (Config.prototype as any).create = () => inline;
      const a = await app([ParallelWorkerModule.forRootAsync(options)]);
      expect((await a.get(ParallelWorker).run('numbers')).ids).toBe(95);
      await a.close();
    });

    it('makes ParallelWorker injectable everywhere with isGlobal', async () => {
      @Injectable()
      class Consumer {
        constructor(readonly pw: ParallelWorker) {}
      }
      @Module({ providers: [Consumer, Numbers] })
      class Feature {}
      const a = await app(
        [ParallelWorkerModule.forRoot({ ...inline, isGlobal: true }), Feature],
        [],
      );
      expect((await a.get(Consumer).pw.run('numbers')).ids).toBe(95);
      await a.close();
    });
  });
});

describe('bootstrap errors', () => {
  const boot = (providers: any[], options: ParallelWorkerOptions = inline) =>
    app([ParallelWorkerModule.forRoot(options)], providers);

  it('refuses a loader without a handler, naming Class.method and the job', async () => {
    @Injectable()
    class OnlyLoader {
      @RangeLoader('users') next() {
        return [];
      }
    }
    await expect(boot([OnlyLoader])).rejects.toThrow(
      'Job "users" has a range loader (OnlyLoader.next) but no range handler. Add a @RangeHandler(\'users\') method to a provider.',
    );
  });

  it('refuses a handler without a loader', async () => {
    @Injectable()
    class OnlyHandler {
      @RangeHandler() handle() {}
    }
    await expect(boot([OnlyHandler])).rejects.toThrow(
      'Job "default" has a range handler (OnlyHandler.handle) but no range loader.',
    );
  });

  it('refuses two loaders for one job', async () => {
    @Injectable()
    class Two {
      @RangeLoader('users') a() {
        return [];
      }
      @RangeLoader('users') b() {
        return [];
      }
      @RangeHandler('users') h() {}
    }
    await expect(boot([Two])).rejects.toThrow(
      'Job "users" has two range loaders: Two.a and Two.b.',
    );
  });

  it('refuses a decorated method on a request-scoped provider', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class Scoped {
      @RangeLoader('users') next() {
        return [];
      }
      @RangeHandler('users') handle() {}
    }
    await expect(boot([Scoped])).rejects.toThrow(
      'Scoped.next (job "users") is on a request-scoped or transient provider.',
    );
  });

  it('refuses bad options at bootstrap', async () => {
    await expect(boot([Numbers], { workers: -2 })).rejects.toThrow(
      'ParallelWorkerModule: option "workers" must be a whole number >= 0, got -2.',
    );
    await expect(
      boot([Numbers], { storage: { nope: true } as any }),
    ).rejects.toThrow(
      "option \"storage\" must be 'sqlite:<path>', 'memory', a Redis URL, ioredis options, an ioredis Redis or Cluster client",
    );
  });

  it('asks for a job name when the app has several', async () => {
    @Injectable()
    class Other {
      @RangeLoader('other') next() {
        return [];
      }
      @RangeHandler('other') handle() {}
    }
    const a = await boot([Numbers, Other]);
    await expect(a.get(ParallelWorker).run()).rejects.toThrow(
      'This app declares several jobs ("numbers", "other"); name the one to run: run(\'numbers\').',
    );
    await a.close();
  });
});

describe('logging in a worker', () => {
  it('names the worker in every line it logs', () => {
    const warn = jest
      .spyOn(Logger.prototype, 'warn')
      .mockImplementation(() => undefined);
    process.env[ENV_WORKER_ID] = 'w-1a2b3c4d';
    try {
      new ModuleLogger(LOG_CONTEXT, { enabled: true, level: 'info' }).warn(
        'the primary disconnected',
      );
      expect(
        (warn.mock.contexts[0] as unknown as { context: string }).context,
      ).toBe('ParallelWorker worker w-1a2b3c4d');
    } finally {
      delete process.env[ENV_WORKER_ID];
      warn.mockRestore();
    }
  });
});

describe('partitions (in process, workers: 0)', () => {
  /** 1..rows split in partitions; the loader keeps to ctx.partition unless `overreach` says which partition does not. */
  @Injectable()
  class Split {
    static rows = 1000;
    static bounds: unknown = [
      { after: null, upTo: 250 },
      { after: 250, upTo: 500 },
      { after: 500, upTo: null },
    ];
    static count?: number;
    static overreach?: number;
    static calls: string[] = [];
    static handled: ID[] = [];
    static concurrent = 0;
    static maxConcurrent = 0;

    @RangePartitions('split')
    partitions({ runId }: { job: string; runId: string }): unknown {
      Split.calls.push(runId);
      return Split.bounds;
    }

    @RangeLoader('split')
    async next(lastId: ID | null, ctx: LoadContext): Promise<number[]> {
      const p = ctx.partition!;
      Split.concurrent++;
      Split.maxConcurrent = Math.max(Split.maxConcurrent, Split.concurrent);
      await new Promise((r) => setTimeout(r, 2));
      Split.concurrent--;
      const from = Number(lastId ?? 0) + 1;
      const end =
        p.index === Split.overreach
          ? Split.rows
          : Math.min(Split.rows, p.upTo === null ? Infinity : Number(p.upTo));
      return Array.from(
        { length: Math.max(0, Math.min(ctx.limit, end - from + 1)) },
        (_, i) => from + i,
      );
    }

    @RangeHandler('split')
    handle({ idsRange }: Range): void {
      Split.handled.push(...idsRange);
    }
  }
  const sorted = () => [...Split.handled].sort((x, y) => Number(x) - Number(y));
  const all = (n: number, from = 1) =>
    Array.from({ length: n - from + 1 }, (_, i) => from + i);

  beforeEach(() => {
    Split.rows = 1000;
    Split.bounds = [
      { after: null, upTo: 250 },
      { after: 250, upTo: 500 },
      { after: 500, upTo: null },
    ];
    Split.overreach = undefined;
    Split.calls = [];
    Split.handled = [];
    Split.maxConcurrent = 0;
  });

  it('loads every partition (several at once), hands out every id once, and keeps each partition cursor for the next run', async () => {
    const a = await app([ParallelWorkerModule.forRoot(inline)], [Split]);
    const pw = a.get(ParallelWorker);
    expect(await pw.run('split')).toMatchObject({
      status: 'completed',
      ids: 1000,
    });
    expect(sorted()).toEqual(all(1000));
    expect(Split.maxConcurrent).toBeGreaterThan(1);
    const s = await pw.status('split');
    expect(s.partitions?.map((p) => p.cursor)).toEqual([250, 500, 1000]);
    expect(s.partitions?.map((p) => p.percent)).toEqual([100, 100, 100]);
    // New rows: the next run keeps the stored partitions (the method is not asked again) and handles only those.
    Split.rows = 1100;
    Split.handled = [];
    expect(await pw.run('split')).toMatchObject({
      status: 'completed',
      ids: 100,
    });
    expect(sorted()).toEqual(all(1100, 1001));
    expect(Split.calls).toHaveLength(1);
    // from: null asks the method again and starts every partition over.
    Split.handled = [];
    expect(await pw.run('split', { from: null })).toMatchObject({ ids: 1100 });
    expect(Split.calls).toHaveLength(2);
    await a.close();
  });

  it('gives each partition with integer bounds a percent of its key space while the run goes on', async () => {
    Split.bounds = [
      { after: 0, upTo: 500 },
      { after: 500, upTo: 1000 },
    ];
    const a = await app(
      [ParallelWorkerModule.forRoot({ ...inline, loaderConcurrency: 1 })],
      [Split],
    );
    const pw = a.get(ParallelWorker);
    const run = pw.run('split');
    // One partition at a time (loaderConcurrency 1): the first is part-way when the second has not begun.
    let seen: (number | undefined)[] = [];
    while (!(seen[0] !== undefined && seen[0] > 0 && seen[0] < 100)) {
      await new Promise((r) => setTimeout(r, 1));
      seen = (await pw.status('split')).partitions?.map((p) => p.percent) ?? [];
    }
    expect(seen[1]).toBe(0);
    await run;
    expect(
      (await pw.status('split')).partitions?.map((p) => p.percent),
    ).toEqual([100, 100]);
    await a.close();
  });

  it('splits integer ids from { min, max } into count partitions', async () => {
    @Injectable()
    class Counted extends Split {
      @RangePartitions('split', { count: 4 })
      override partitions(): unknown {
        return { min: 1, max: 1000 };
      }
    }
    const a = await app([ParallelWorkerModule.forRoot(inline)], [Counted]);
    const pw = a.get(ParallelWorker);
    expect(await pw.run('split')).toMatchObject({ ids: 1000 });
    expect(sorted()).toEqual(all(1000));
    expect(
      (await pw.status('split')).partitions?.map((p) => [p.after, p.upTo]),
    ).toEqual([
      [null, 250],
      [250, 500],
      [500, 750],
      [750, null],
    ]);
    await a.close();
  });

  it('fails the run when the loader returns an id past its partition, naming the partition and the id, and hands none of that call out', async () => {
    Split.bounds = [
      { after: null, upTo: 5 },
      { after: 5, upTo: null },
    ];
    Split.overreach = 0;
    const a = await app([ParallelWorkerModule.forRoot(inline)], [Split]);
    const run = a.get(ParallelWorker).run('split');
    await expect(run).rejects.toThrow(RunFailedError);
    await expect(run).rejects.toThrow(
      'Job "split": the range loader returned 6 while loading partition 1 of 2, (null, 5]; it is past the partition\'s end, so another partition hands it out.',
    );
    // Its first call returned 1..10: not even 1..5 were handed out.
    expect(Split.handled.filter((id) => Number(id) <= 5)).toEqual([]);
    await a.close();
  });

  it.each([
    [[], 'returned [], not a non-empty array of { after, upTo }'],
    [
      [
        { after: null, upTo: 300 },
        { after: 200, upTo: null },
      ],
      'returned partitions that overlap: index 1 starts after 200, before the end 300 of index 0',
    ],
    [
      [
        { after: null, upTo: 500 },
        { after: 501, upTo: null },
      ],
      'returned partitions with a gap: index 0 { after: null, upTo: 500 } ends at 500 and index 1 { after: 501, upTo: null } starts after 501, so ids in (500, 501] would never be handled; start index 1 after 500',
    ],
    [[{ after: 5, upTo: 5 }], 'returned after 5 not below upTo 5 at index 0'],
    [
      [
        { after: null, upTo: null },
        { after: null, upTo: null },
      ],
      'returned upTo null at index 0; only the last partition runs to the last id',
    ],
  ])('refuses partitions %j before anything starts', async (bounds, why) => {
    Split.bounds = bounds;
    const a = await app([ParallelWorkerModule.forRoot(inline)], [Split]);
    const pw = a.get(ParallelWorker);
    const run = pw.run('split');
    await expect(run).rejects.toThrow(InvalidRangeError);
    await expect(run).rejects.toThrow(
      `Job "split": Split.partitions (@RangePartitions) ${why}`,
    );
    expect(Split.handled).toEqual([]);
    expect((await pw.status('split')).state).toBe('idle');
    await a.close();
  });
});
