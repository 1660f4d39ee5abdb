import { Injectable, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  RangeHandler,
  RangeLoader,
  RangePartitions,
  RangeTotal,
  RunFailedError,
  InvalidParamsError,
} from '../../lib';

/** 1..95, in process. */
@Injectable()
class Counting {
  static handled: ID[] = [];

  @RangeLoader('counting')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, 95 - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('counting')
  handle({ idsRange }: Range): void {
    Counting.handled.push(...idsRange);
  }
}

const never = () => new Promise<never>(() => undefined);
const inline: ParallelWorkerOptions = {
  workers: 0,
  storage: 'memory',
  rangeSize: 10,
  logging: { level: 'warn' },
};
const all = Array.from({ length: 95 }, (_, i) => i + 1);
const sorted = () =>
  [...Counting.handled].sort((a, b) => Number(a) - Number(b));

let warnings: string[];
/** Resolves with the first warning that contains `text`. */
let warned: (text: string) => Promise<string>;

beforeEach(() => {
  Counting.handled = [];
  warnings = [];
  const waiting: { text: string; resolve: (w: string) => void }[] = [];
  jest.spyOn(Logger.prototype, 'warn').mockImplementation((message) => {
    warnings.push(String(message));
    for (const w of waiting)
      if (String(message).includes(w.text)) w.resolve(String(message));
  });
  warned = (text) =>
    new Promise((resolve) => {
      const seen = warnings.find((w) => w.includes(text));
      if (seen) resolve(seen);
      else waiting.push({ text, resolve });
    });
});
afterEach(() => jest.restoreAllMocks());

async function app(options: ParallelWorkerOptions, providers: unknown[]) {
  const moduleRef = await Test.createTestingModule({
    imports: [ParallelWorkerModule.forRoot({ ...inline, ...options })],
    providers: providers as never[],
  }).compile();
  return moduleRef.init();
}

describe('user callbacks that never settle', () => {
  it('a throttle that never answers counts as unknown: the run completes, and the warning names the option and the time', async () => {
    const a = await app({ throttle: never, healthTimeoutMs: 20 }, [Counting]);
    expect(await a.get(ParallelWorker).run('counting')).toMatchObject({
      status: 'completed',
      ids: 95,
    });
    expect(sorted()).toEqual(all);
    expect(
      await warned('the throttle option did not answer within healthTimeoutMs'),
    ).toBe(
      'Job "counting": the throttle option did not answer within healthTimeoutMs (20 ms); counted as unknown, so handing out goes on ' +
        'as if it said go, and it is asked again in 1000 ms. Make it answer sooner (a query with a statement timeout) or raise healthTimeoutMs.',
    );
    await a.close();
  });

  it('a @RangePartitions that never answers fails the run, naming the method and what to do; nothing starts', async () => {
    @Injectable()
    class Split extends Counting {
      @RangePartitions('counting')
      partitions() {
        return never();
      }
    }
    const a = await app({ loaderTimeoutMs: 50 }, [Split]);
    const pw = a.get(ParallelWorker);
    const error = await pw.run('counting').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunFailedError);
    expect((error as RunFailedError).summary).toMatchObject({
      job: 'counting',
      status: 'failed',
      ids: 0,
    });
    expect((error as Error).message).toContain(
      'Split.partitions (@RangePartitions) did not answer within loaderTimeoutMs (50 ms), and job "counting" cannot run without its partition plan; ' +
        'nothing was started or changed. Make it answer sooner (e.g. MIN and MAX over an indexed id), or raise loaderTimeoutMs, then run the job again.',
    );
    expect(Counting.handled).toEqual([]);
    expect((await pw.status('counting')).state).toBe('idle');
    await a.close();
  });

  it('a @RangeTotal that never answers: the run completes without a total (no percent), with a warning naming the method', async () => {
    @Injectable()
    class Totalled extends Counting {
      @RangeTotal('counting')
      count() {
        return never();
      }
    }
    const a = await app({ loaderTimeoutMs: 50 }, [Totalled]);
    const pw = a.get(ParallelWorker);
    expect(await pw.run('counting')).toMatchObject({
      status: 'completed',
      ids: 95,
    });
    expect(sorted()).toEqual(all);
    expect(await warned('Totalled.count (@RangeTotal)')).toContain(
      'Job "counting": Totalled.count (@RangeTotal) did not answer within loaderTimeoutMs (50 ms); the run goes on without a total',
    );
    const s = await pw.status('counting');
    expect(s.state).toBe('completed');
    expect(s.total).toBeUndefined();
    expect(s.percent).toBeUndefined();
    await a.close();
  });

  it('a params check that never answers refuses the run, naming the loader and the time; nothing starts', async () => {
    @Injectable()
    class Checked extends Counting {
      @RangeLoader('counting', { params: never })
      override next(lastId: ID | null, ctx: LoadContext): number[] {
        return super.next(lastId, ctx);
      }
    }
    const a = await app({ loaderTimeoutMs: 50 }, [Checked]);
    const pw = a.get(ParallelWorker);
    const error = await pw
      .run('counting', { params: { since: '2026-01-01' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidParamsError);
    expect((error as Error).message).toBe(
      'Job "counting" was not started: its params are not valid (Checked.next @RangeLoader params): ' +
        'the params check did not answer within loaderTimeoutMs (50 ms).',
    );
    expect(Counting.handled).toEqual([]);
    expect((await pw.status('counting')).state).toBe('idle');
    await a.close();
  });
});
