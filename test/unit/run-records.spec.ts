import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { IsIn, IsInt, IsISO8601, Min } from 'class-validator';
import {
  type ID,
  InvalidParamsError,
  type LoadContext,
  MemoryStore,
  ParallelWorker,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  type RangeContext,
  RangeHandler,
  RangeItemsFailedError,
  RangeLoader,
  RangeTotal,
  RunFailedError,
  RunRefusedError,
} from '../../lib';

/** What every job below saw. */
const seen = {
  loads: [] as LoadContext[],
  handled: [] as { ids: ID[]; ctx: RangeContext }[],
  totals: [] as unknown[],
};
let rows = 95;
/** Ids whose handler call fails at every attempt (only those ids: the rest of the range is done). */
let failing: ID[] = [];
/** Ids whose handler call fails at the first attempt only. */
let failingOnce: ID[] = [];
/** Ids a handler names in RangeItemsFailedError though its range does not have them. */
let strangers: ID[] = [];
let delayMs = 0;
let loaderBreaksAt = 0;

const ids = (lastId: ID | null, limit: number) => {
  const from = Number(lastId ?? 0) + 1;
  return Array.from(
    { length: Math.max(0, Math.min(limit, rows - from + 1)) },
    (_, i) => from + i,
  );
};

@Injectable()
class Numbers {
  @RangeLoader('numbers')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    seen.loads.push(ctx);
    if (loaderBreaksAt && seen.loads.length >= loaderBreaksAt)
      return 'not ids' as never;
    return ids(lastId, ctx.limit);
  }

  @RangeTotal('numbers')
  total(ctx: unknown): number {
    seen.totals.push(ctx);
    return rows;
  }

  @RangeHandler('numbers')
  async handle({ idsRange }: Range, ctx: RangeContext): Promise<void> {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    seen.handled.push({ ids: idsRange, ctx });
    const failed = idsRange.filter(
      (id) =>
        failing.includes(id) || (ctx.attempt === 1 && failingOnce.includes(id)),
    );
    if (strangers.length && idsRange.includes(1))
      throw new RangeItemsFailedError([1, ...strangers], 'mixed up');
    if (failed.length)
      throw new RangeItemsFailedError(
        failed,
        new Error(`constraint violated by ${failed.join(', ')}`),
      );
  }
}

/** The params a backfill takes, checked with class-validator. */
class BackfillParams {
  @IsISO8601()
  since!: string;

  @IsInt()
  @Min(1)
  batch!: number;

  @IsIn(['dry', 'live'])
  mode!: string;
}

@Injectable()
class Checked {
  @RangeLoader('checked', { params: BackfillParams })
  next(lastId: ID | null, ctx: LoadContext): number[] {
    seen.loads.push(ctx);
    return ids(lastId, ctx.limit);
  }

  @RangeHandler('checked')
  handle(): void {}

  @RangeLoader('guarded', {
    params: (p: Record<string, unknown>) =>
      p.tenant === undefined ? 'tenant is required' : true,
  })
  nextGuarded(lastId: ID | null, ctx: LoadContext): number[] {
    seen.loads.push(ctx);
    return ids(lastId, ctx.limit);
  }

  @RangeHandler('guarded')
  handleGuarded(): void {}
}

const inline: ParallelWorkerOptions = {
  workers: 0,
  storage: 'memory',
  rangeSize: 10,
  retryBackoffMs: 1,
  maxAttempts: 2,
  logging: { enabled: false },
};

async function app(
  options: ParallelWorkerOptions = inline,
  providers: any[] = [Numbers],
) {
  const moduleRef = await Test.createTestingModule({
    imports: [ParallelWorkerModule.forRoot(options)],
    providers,
  }).compile();
  const a = await moduleRef.init();
  return { a, pw: a.get(ParallelWorker) };
}

beforeEach(() => {
  seen.loads = [];
  seen.handled = [];
  seen.totals = [];
  rows = 95;
  failing = [];
  failingOnce = [];
  strangers = [];
  delayMs = 0;
  loaderBreaksAt = 0;
});

describe('run params', () => {
  it('reach the loader, the handler and @RangeTotal, frozen, and are recorded with the run', async () => {
    const { a, pw } = await app();
    const params = { since: '2026-01-01', tenants: [1, 2], deep: { on: true } };
    const summary = await pw.run('numbers', { params, startedBy: 'ops' });
    expect(summary.ids).toBe(95);
    expect(seen.loads.map((c) => c.params)).not.toContain(undefined);
    for (const ctx of [
      ...seen.loads.map((c) => c.params),
      ...seen.handled.map((h) => h.ctx.params),
      ...seen.totals.map((t) => (t as LoadContext).params),
    ])
      expect(ctx).toEqual(params);
    expect(seen.totals).toHaveLength(1);
    // One call cannot change what the next sees.
    const first = seen.loads[0].params as { deep: { on: boolean } };
    expect(() => (first.deep.on = false)).toThrow(TypeError);
    const [record] = await pw.history('numbers');
    expect(record).toMatchObject({
      runId: summary.runId,
      params,
      startedBy: 'ops',
      host: pw.hostId,
      status: 'completed',
    });
    await a.close();
  });

  it('a run without params gets none (not the last run’s)', async () => {
    const { a, pw } = await app();
    await pw.run('numbers', { params: { a: 1 } });
    seen.loads = [];
    await pw.run('numbers', { from: null });
    expect(seen.loads[0]).not.toHaveProperty('params');
    expect((await pw.history('numbers'))[0].params).toBeNull();
    await a.close();
  });

  it.each([
    [{ at: new Date(0) }, 'params.at is a Date: pass date.toISOString()'],
    [{ n: 10n }, 'params.n is a bigint (10n): pass it as a string'],
    [{ list: [1, NaN] }, 'params.list[1] is NaN, which JSON cannot hold'],
    [{ f: () => 1 }, 'params.f is a function, which JSON cannot hold'],
    [{ m: new Map() }, 'params.m is a Map, not a plain object'],
    [{ 'odd key': { x: [undefined] } }, 'params["odd key"].x[0] is undefined'],
    // eslint-disable-next-line no-sparse-arrays
    [{ list: [1, , 3] }, 'params.list[1] is an empty slot of a sparse array'],
    [
      'tenant-1',
      "params must be a plain object of JSON values, got 'tenant-1'",
    ],
  ])(
    'refuses params JSON cannot carry, naming the key, before anything starts (%p)',
    async (params, message) => {
      const { a, pw } = await app();
      const run = pw.run('numbers', { params: params as never });
      await expect(run).rejects.toThrow(InvalidParamsError);
      await expect(run).rejects.toThrow(
        `Job "numbers" was not started: ${message}`,
      );
      expect(seen.loads).toHaveLength(0);
      expect((await pw.status('numbers')).state).toBe('idle');
      await a.close();
    },
  );

  it('refuses params that refer back to themselves', async () => {
    const { a, pw } = await app();
    const params: Record<string, unknown> = { a: {} };
    (params.a as Record<string, unknown>).self = params;
    await expect(pw.run('numbers', { params })).rejects.toThrow(
      'params.a.self refers back to itself',
    );
    await a.close();
  });

  it('checks params with the job’s class-validator class or function before anything starts', async () => {
    const { a, pw } = await app(inline, [Checked]);
    const bad = pw.run('checked', {
      params: { since: 'yesterday', batch: 0, mode: 'dry' },
    });
    await expect(bad).rejects.toThrow(InvalidParamsError);
    await expect(bad).rejects.toThrow(
      /Job "checked" was not started: its params are not valid \(Checked\.next @RangeLoader params\): since must be a valid ISO 8601 date string; batch must not be less than 1\./,
    );
    expect((await bad.catch((e) => e)).problems).toHaveLength(2);
    expect(seen.loads).toHaveLength(0);
    const ok = await pw.run('checked', {
      params: { since: '2026-01-01', batch: 500, mode: 'live' },
    });
    expect(ok.ids).toBe(95);

    await expect(pw.run('guarded', { params: {} })).rejects.toThrow(
      'Job "guarded" was not started: its params are not valid (Checked.nextGuarded @RangeLoader params): tenant is required.',
    );
    expect((await pw.run('guarded', { params: { tenant: 't1' } })).status).toBe(
      'completed',
    );
    await a.close();
  });

  it('refuses a run() that would join the active run with other params, on this host and from another host', async () => {
    const store = new MemoryStore();
    const one = await app({ ...inline, storage: store });
    const two = await app({ ...inline, storage: store });
    delayMs = 20;
    const running = one.pw.run('numbers', { params: { tag: 'a' } });
    await new Promise((r) => setTimeout(r, 50));
    await expect(
      one.pw.run('numbers', { params: { tag: 'b' } }),
    ).rejects.toThrow(
      'Job "numbers" was not started: its run on this host is active with params {"tag":"a"}, and this run() has params {"tag":"b"}.',
    );
    const other = two.pw.run('numbers');
    await expect(other).rejects.toThrow(RunRefusedError);
    await expect(other).rejects.toThrow(
      /is active with params \{"tag":"a"\}, and this run\(\) has none/,
    );
    // The same params join it (keys in any order).
    const joined = await two.pw.run('numbers', {
      params: { tag: 'a' },
    });
    const summary = await running;
    expect(joined.runId).toBe(summary.runId);
    const handled = seen.handled.flatMap((h) => h.ids);
    expect(handled).toHaveLength(95);
    expect(new Set(handled).size).toBe(95);
    await one.a.close();
    await two.a.close();
  });
});

describe('history', () => {
  it('records completed, cancelled, stopped and failed runs, newest first, before run() resolves', async () => {
    const { a, pw } = await app({ ...inline, historyLimit: 3 });
    const first = await pw.run('numbers', { startedBy: 'cron' });
    expect((await pw.history('numbers'))[0].runId).toBe(first.runId);

    delayMs = 10;
    const cancelled = pw.run('numbers', {
      from: null,
      params: { attempt: 2 },
    });
    await new Promise((r) => setTimeout(r, 60));
    await pw.cancel('numbers');
    const c = await cancelled;
    expect(c.status).toBe('stopped');

    const stopped = pw.run('numbers', { from: null });
    await new Promise((r) => setTimeout(r, 60));
    await pw.stop('numbers');
    const s = await stopped;
    expect(s.status).toBe('stopped');

    delayMs = 0;
    loaderBreaksAt = 2;
    seen.loads = [];
    const failed = await pw.run('numbers').catch((e: RunFailedError) => e);
    expect(failed).toBeInstanceOf(RunFailedError);
    const h = await pw.history('numbers');
    // historyLimit 3: the first run is gone; the stopped run was resumed by the failed one (same run id).
    expect(h.map((r) => r.status)).toEqual([
      'failed',
      'cancelled',
      'completed',
    ]);
    expect(h[0]).toMatchObject({
      runId: s.runId,
      error: expect.stringContaining('not ids'),
      summary: { status: 'failed' },
    });
    expect(h[1]).toMatchObject({
      runId: c.runId,
      params: { attempt: 2 },
      startedBy: null,
      summary: { status: 'stopped', ids: c.ids },
    });
    expect(h[2]).toMatchObject({ runId: first.runId, startedBy: 'cron' });
    for (const r of h) {
      expect(r.endedAt).toBeGreaterThanOrEqual(r.startedAt as number);
      expect(r.job).toBe('numbers');
    }
    expect(await pw.history('numbers', { limit: 1 })).toHaveLength(1);
    await expect(pw.history('numbers', { limit: -1 })).rejects.toThrow(
      "history('numbers', { limit }): limit must be a whole number ≥ 0, got -1.",
    );
    await a.close();
  });

  it('keeps no record of runs with nothing to do (cron ticks after the job caught up), so they never push real runs out', async () => {
    const { a, pw } = await app({ ...inline, historyLimit: 2 });
    const real = await pw.run('numbers');
    expect(real.ids).toBeGreaterThan(0);
    for (let tick = 0; tick < 5; tick++) {
      const empty = await pw.run('numbers');
      expect(empty).toMatchObject({ status: 'completed', ids: 0 });
    }
    const h = await pw.history('numbers');
    expect(h.map((r) => r.runId)).toEqual([real.runId]);
    expect(h[0].summary.ids).toBe(real.ids);
    await a.close();
  });

  it('keeps none with historyLimit: 0', async () => {
    const { a, pw } = await app({ ...inline, historyLimit: 0 });
    await pw.run('numbers');
    expect(await pw.history('numbers')).toEqual([]);
    await a.close();
  });
});

describe('partial range failures (RangeItemsFailedError)', () => {
  it('counts the rest of the range as done and retries only the failed ids, then dead-letters them', async () => {
    const { a, pw } = await app();
    failing = [7, 13];
    failingOnce = [55];
    const summary = await pw.run('numbers');
    expect(summary).toMatchObject({
      ids: 93,
      // 7 ranges whole, the done part of the 3 that failed in part, and the retry of 55.
      ranges: { completed: 11, retried: 3, dead: 2 },
      host: { ids: 93 },
    });
    const calls = seen.handled.map((h) => `${h.ctx.attempt}:${h.ids.join()}`);
    // The retries hold only the failed ids.
    expect(calls).toEqual(
      expect.arrayContaining([
        '2:7',
        '2:13',
        '2:55',
        '1:51,52,53,54,55,56,57,58,59,60',
      ]),
    );
    // Every id but 7, 13 and 55 was handled once; 55 twice (its retry succeeded).
    const count = new Map<ID, number>();
    for (const id of seen.handled.flatMap((h) => h.ids))
      count.set(id, (count.get(id) ?? 0) + 1);
    expect([...count].filter(([, n]) => n !== 1).sort()).toEqual([
      [13, 2],
      [55, 2],
      [7, 2],
    ]);
    const dead = await pw.deadLetters('numbers');
    expect(dead.map((d) => d.range.ids)).toEqual([[7], [13]]);
    expect(dead[0]).toMatchObject({
      attempts: 2,
      error: {
        message: '1 id of the range failed: constraint violated by 7',
        stack: expect.stringContaining('constraint violated by 7'),
      },
    });
    expect(await pw.deadLetters('numbers', { offset: 1 })).toHaveLength(1);
    const [record] = await pw.history('numbers');
    expect(record.deadLetters).toBe(2);
    await a.close();
  });

  it('retries the whole range when the error names ids the range does not have', async () => {
    const { a, pw } = await app();
    strangers = [500];
    const summary = await pw.run('numbers');
    expect(summary).toMatchObject({ ids: 85, ranges: { dead: 1 } });
    const [dead] = await pw.deadLetters('numbers');
    expect(dead.range.ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(dead.error.message).toBe(
      'Numbers.handle threw RangeItemsFailedError naming an id that is not in its range (500): name only ids of the range it was given; the whole range is retried',
    );
    await a.close();
  });
});
