import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { RangeItemsFailedError } from '../../lib';
import { parseWorkerMessage } from '../../lib/cluster/ipc.messages';
import { RunSpan } from '../../lib/run/tracing';
import type { JobDefinition } from '../../lib/job.registry';
import { RangeExecutor } from '../../lib/cluster/range-executor';
import type { Range, RangeContext } from '../../lib';

const job = (
  handler: (range: Range, ctx: RangeContext) => unknown,
): JobDefinition => ({
  name: 'items',
  loader: { name: 'Items.next', call: () => [] },
  handler: { name: 'Items.handle', call: handler },
});

const wire = (token: number) => ({ token, attempt: 2, ids: [1, 2], prev: 0 });

describe('RangeExecutor', () => {
  it('gives the handler its range and a full context', async () => {
    const seen: { range?: Range; ctx?: RangeContext } = {};
    const executor = new RangeExecutor(
      job((range, ctx) => Object.assign(seen, { range, ctx: { ...ctx } })),
      { job: 'items', runId: 'run-1', params: { since: '2026-01-01' } },
      'w-1',
    );
    const result = await executor.execute({
      ...wire(7),
      payload: { tenant: 'a' },
    });

    expect(result).toMatchObject({ token: 7, ok: true });
    expect(seen.range).toEqual({ tenant: 'a', idsRange: [1, 2], lastId: 0 });
    // Spreading the context keeps the signal (it is made when first read).
    expect(seen.ctx).toMatchObject({
      job: 'items',
      runId: 'run-1',
      attempt: 2,
      token: 7,
      workerId: 'w-1',
      params: { since: '2026-01-01' },
    });
    expect(seen.ctx?.signal).toBeInstanceOf(AbortSignal);
    expect(seen.ctx?.signal.aborted).toBe(false);
  });

  it('says when a handler that read its signal returned after it aborted (it may have stopped early), not when it returned first or never read it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handled: number[] = [];
    const executor = new RangeExecutor(
      job(async ({ idsRange }, ctx) => {
        for (const id of idsRange as number[]) {
          if (ctx.signal.aborted) return;
          handled.push(id);
          if (ctx.token === 1) await gate;
        }
      }),
      { job: 'items', runId: 'run-1' },
      'w-1',
    );
    const stopped = executor.execute(wire(1));
    const finished = await executor.execute(wire(2));
    executor.abort([1, 2], 'lease lost');
    release();
    expect(await stopped).toMatchObject({ token: 1, ok: true, aborted: true });
    expect(finished).toEqual({ token: 2, ok: true, ms: expect.any(Number) });
    expect(handled).toEqual([1, 1, 2]);
    // A handler that never reads its signal cannot have stopped early for it: it finished its range.
    let unblock!: () => void;
    const blocked = new Promise<void>((r) => (unblock = r));
    const heedless = new RangeExecutor(
      job(() => blocked),
      { job: 'items', runId: 'run-1' },
      'w-1',
    );
    const done = heedless.execute(wire(3));
    heedless.abort([3], 'lease lost');
    unblock();
    expect(await done).toEqual({ token: 3, ok: true, ms: expect.any(Number) });
    expect(
      parseWorkerMessage({
        tag: 'parallel-worker',
        type: 'results',
        results: [await stopped],
      }),
    ).toBeDefined();
  });

  it('aborts the signal of a running range, whether the handler read it before or after the abort', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const early: AbortSignal[] = [];
    const late: AbortSignal[] = [];
    const executor = new RangeExecutor(
      job(async (_range, ctx) => {
        if (ctx.token === 1) early.push(ctx.signal);
        await gate;
        if (ctx.token === 2) late.push(ctx.signal);
        if (ctx.signal.aborted) throw ctx.signal.reason;
      }),
      { job: 'items', runId: 'run-1' },
      'w-1',
    );
    const results = Promise.all([
      executor.execute(wire(1)),
      executor.execute(wire(2)),
    ]);
    await new Promise((r) => setImmediate(r));
    executor.abort([1, 2], 'lease lost');
    expect(early[0].aborted).toBe(true);
    release();

    expect(await results).toEqual([
      {
        token: 1,
        ok: false,
        error: expect.objectContaining({ message: 'lease lost' }),
      },
      {
        token: 2,
        ok: false,
        error: expect.objectContaining({ message: 'lease lost' }),
      },
    ]);
    expect(late[0].aborted).toBe(true);
    expect((late[0].reason as Error).message).toBe('lease lost');
    expect(executor.active).toBe(0);
  });

  it('answers a RangeItemsFailedError with the ids it names (bigint as a string) and the cause', async () => {
    const executor = new RangeExecutor(
      job(() => {
        throw new RangeItemsFailedError(
          [2n, 1],
          new Error('unique violation on row 2'),
        );
      }),
      { job: 'items', runId: 'run-1' },
      'w-1',
    );
    const result = await executor.execute(wire(3));
    expect(result).toEqual({
      token: 3,
      ok: false,
      failedIds: ['2', 1],
      error: {
        message: '2 ids of the range failed: unique violation on row 2',
        stack: expect.stringContaining('unique violation on row 2'),
      },
    });
  });

  it('fails the whole range, naming them, when RangeItemsFailedError names values that are not ids', async () => {
    const executor = new RangeExecutor(
      job(() => {
        throw new RangeItemsFailedError([1, { id: 2 } as never, NaN]);
      }),
      { job: 'items', runId: 'run-1' },
      'w-1',
    );
    const result = await executor.execute(wire(4));
    expect(result).toEqual({
      token: 4,
      ok: false,
      error: {
        message:
          'RangeItemsFailedError named 2 values that are not ids ({ id: 2 }, NaN): name ids (numbers, strings or bigints) of the range it was given; the whole range is retried',
        stack: expect.any(String),
      },
    });
    // It travels: a malformed answer would cost every result of its batch.
    expect(
      parseWorkerMessage({
        tag: 'parallel-worker',
        type: 'results',
        results: [result],
      }),
    ).toBeDefined();
  });

  it('gives every range the same params: one handler cannot change them for the next', async () => {
    const seen: unknown[] = [];
    const executor = new RangeExecutor(
      job((_range, ctx) => {
        seen.push(JSON.stringify(ctx.params));
        (ctx.params as { tags: string[] }).tags.push('changed');
      }),
      { job: 'items', runId: 'run-1', params: { tags: ['a'] } },
      'w-1',
    );
    const results = await Promise.all([
      executor.execute(wire(5)),
      executor.execute(wire(6)),
    ]);
    expect(results.map((r) => r.ok)).toEqual([false, false]);
    expect(seen).toEqual(['{"tags":["a"]}', '{"tags":["a"]}']);
  });

  it('answers as usual when a tracing span processor throws', async () => {
    const failing = {
      onStart: () => {
        throw new Error('processor down');
      },
      onEnd: () => {
        throw new Error('processor down');
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [failing] }),
    );
    try {
      const executor = new RangeExecutor(
        job(() => undefined),
        {
          job: 'items',
          runId: 'run-1',
          trace: {
            traceId: '0af7651916cd43dd8448eb211c80319c',
            spanId: 'b7ad6b7169203331',
            traceFlags: 1,
          },
        },
        'w-1',
      );
      expect(await executor.execute(wire(7))).toMatchObject({
        token: 7,
        ok: true,
      });
      expect(RunSpan.start('items', 'run-1', false)).toBeUndefined();
    } finally {
      trace.disable();
    }
  });

  it('marks a range span aborted when its handler returned after its signal aborted', async () => {
    const exporter = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      }),
    );
    try {
      const executor = new RangeExecutor(
        job(async (_range, ctx) => {
          await new Promise((r) => ctx.signal.addEventListener('abort', r));
        }),
        {
          job: 'items',
          runId: 'run-1',
          trace: {
            traceId: '0af7651916cd43dd8448eb211c80319c',
            spanId: 'b7ad6b7169203331',
            traceFlags: 1,
          },
        },
        'w-1',
      );
      const result = executor.execute(wire(7));
      executor.abort([7], 'run stopped');
      expect(await result).toMatchObject({ ok: true, aborted: true });
      expect(
        exporter
          .getFinishedSpans()
          .map((s) => s.attributes['parallel_worker.outcome']),
      ).toEqual(['aborted']);
    } finally {
      trace.disable();
    }
  });
});
