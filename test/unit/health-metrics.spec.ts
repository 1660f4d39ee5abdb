import { Injectable, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import {
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  RangeHandler,
  RangeLoader,
  RangePartitions,
} from 'nestjs-parallel-worker';
import { ParallelWorkerMetricsModule } from 'nestjs-parallel-worker/metrics';
import { ParallelWorkerHealthIndicator } from 'nestjs-parallel-worker/terminus';

const REDIS_URL = process.env.PW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

@Injectable()
class Letters {
  static hang = false;
  static poison = false;

  @RangeLoader('letters')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, 50 - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('letters')
  async handle({ idsRange }: Range): Promise<void> {
    if (Letters.hang) await new Promise(() => undefined);
    if (Letters.poison && idsRange.includes(11)) throw new Error('poison');
  }
}

const inline = {
  workers: 0,
  storage: 'memory',
  rangeSize: 10,
  retryBackoffMs: 1,
  logging: { enabled: false },
};

describe('@nestjs/terminus health indicator', () => {
  beforeEach(() => {
    Letters.hang = false;
  });

  it("is up while the store answers, with each job's state", async () => {
    const m = await Test.createTestingModule({
      imports: [
        TerminusModule,
        ParallelWorkerModule.forRoot({ ...inline, isGlobal: true }),
      ],
      providers: [Letters, ParallelWorkerHealthIndicator],
    }).compile();
    await m.init();
    await m.get(ParallelWorker).run('letters');
    expect(await m.get(ParallelWorkerHealthIndicator).isHealthy()).toEqual({
      'parallel-worker': {
        status: 'up',
        jobs: { letters: { state: 'completed', ids: 50 } },
      },
    });
    await m.close();
  });

  it('is down when the store does not answer', async () => {
    const redis = new Redis(REDIS_URL, {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    const m = await Test.createTestingModule({
      imports: [
        TerminusModule,
        ParallelWorkerModule.forRoot({
          ...inline,
          storage: redis,
          storageKey: `pw-h-${randomBytes(3).toString('hex')}`,
          isGlobal: true,
        }),
      ],
      providers: [Letters, ParallelWorkerHealthIndicator],
    }).compile();
    await m.init();
    const result = await m
      .get(ParallelWorkerHealthIndicator)
      .isHealthy('queue');
    expect(result.queue.status).toBe('down');
    expect((result.queue as { message?: string }).message).toMatch(
      /^the coordination store does not answer: /,
    );
    await m.close();
    redis.disconnect();
  });

  it('is down when a running job makes no progress for stuckAfterMs', async () => {
    Letters.hang = true;
    const m = await Test.createTestingModule({
      imports: [
        TerminusModule,
        ParallelWorkerModule.forRoot({
          ...inline,
          shutdownTimeoutMs: 0,
          isGlobal: true,
        }),
      ],
      providers: [Letters, ParallelWorkerHealthIndicator],
    }).compile();
    await m.init();
    const pw = m.get(ParallelWorker);
    const run = pw.run('letters');
    const health = m.get(ParallelWorkerHealthIndicator);
    await new Promise((r) => setTimeout(r, 50));
    expect(
      (await health.isHealthy('pw', { stuckAfterMs: 100 })).pw.status,
    ).toBe('up');
    await new Promise((r) => setTimeout(r, 150));
    const stuck = await health.isHealthy('pw', { stuckAfterMs: 100 });
    expect(stuck.pw).toMatchObject({
      status: 'down',
      jobs: { letters: { state: 'running', ids: 0 } },
    });
    expect((stuck.pw as { message?: string }).message).toMatch(
      /^job "letters" made no progress for \d+ s$/,
    );
    await pw.stop('letters');
    await run;
    await m.close();
  });

  it('is up while a run is on hold (the health option): waiting for the database is not stuck', async () => {
    const m = await Test.createTestingModule({
      imports: [
        TerminusModule,
        ParallelWorkerModule.forRoot({
          ...inline,
          health: [
            async () => ({
              state: 'hold',
              reason: 'replica lag',
              holdMs: 5000,
            }),
          ],
          shutdownTimeoutMs: 0,
          isGlobal: true,
        }),
      ],
      providers: [Letters, ParallelWorkerHealthIndicator],
    }).compile();
    await m.init();
    const pw = m.get(ParallelWorker);
    const run = pw.run('letters');
    const health = m.get(ParallelWorkerHealthIndicator);
    while (!(await pw.status('letters')).hold)
      await new Promise((r) => setTimeout(r, 10));
    await health.isHealthy('pw', { stuckAfterMs: 100 });
    await new Promise((r) => setTimeout(r, 200));
    expect(
      (await health.isHealthy('pw', { stuckAfterMs: 100 })).pw,
    ).toMatchObject({
      status: 'up',
      jobs: { letters: { state: 'running', ids: 0 } },
    });
    await pw.stop('letters');
    await run;
    await m.close();
  });
});

describe('prom-client metrics', () => {
  it('counts ranges, ids, failures and durations, and reports leases, dead letters and rate', async () => {
    Letters.hang = false;
    Letters.poison = true;
    const registry = new Registry();
    @Module({ imports: [ParallelWorkerMetricsModule.register({ registry })] })
    class Metrics {}
    const m = await Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({ ...inline, isGlobal: true }),
        Metrics,
      ],
      providers: [Letters],
    }).compile();
    await m.init();
    await m.get(ParallelWorker).run('letters');
    const text = await registry.metrics();
    expect(text).toContain(
      'parallel_worker_ranges_total{job="letters",outcome="completed"} 4',
    );
    expect(text).toContain(
      'parallel_worker_ranges_total{job="letters",outcome="retry"} 2',
    );
    expect(text).toContain(
      'parallel_worker_ranges_total{job="letters",outcome="dead"} 1',
    );
    expect(text).toContain('parallel_worker_ids_total{job="letters"} 40');
    expect(text).toContain(
      'parallel_worker_range_duration_seconds_count{job="letters"} 4',
    );
    expect(text).toContain('parallel_worker_dead_letters{job="letters"} 1');
    expect(text).toContain('parallel_worker_leased_ranges{job="letters"} 0');
    expect(text).toMatch(
      /parallel_worker_rate_ids_per_second\{job="letters"\} \d+/,
    );
    Letters.poison = false;
    await m.close();
  });
});

@Injectable()
class SplitLetters {
  @RangePartitions('split')
  partitions() {
    return [
      { after: null, upTo: 20 },
      { after: 20, upTo: null },
    ];
  }

  @RangeLoader('split')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    const end = Math.min(50, Number(ctx.partition?.upTo ?? 50));
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, end - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('split')
  handle(): void {}
}

describe('metrics of a job with partitions', () => {
  it('reports ids handed out per partition and the partitions left', async () => {
    Letters.hang = false;
    Letters.poison = false;
    const registry = new Registry();
    @Module({ imports: [ParallelWorkerMetricsModule.register({ registry })] })
    class Metrics {}
    const m = await Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({ ...inline, isGlobal: true }),
        Metrics,
      ],
      providers: [SplitLetters],
    }).compile();
    await m.init();
    expect(await m.get(ParallelWorker).run('split')).toMatchObject({
      ids: 50,
    });
    const text = await registry.metrics();
    expect(text).toContain(
      'parallel_worker_partition_ids{job="split",partition="1"} 20',
    );
    expect(text).toContain(
      'parallel_worker_partition_ids{job="split",partition="2"} 30',
    );
    expect(text).toContain('parallel_worker_partitions_left{job="split"} 0');
    await m.close();
  });
});
