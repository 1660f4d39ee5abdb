import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import {
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  RangeHandler,
  RangeItemsFailedError,
  RangeLoader,
  RunFailedError,
} from '../../lib';
import { renderStatus } from '../../lib/cli/status-view';
import { RedisStore } from '../../lib/store/redis.store';
import { REDIS_URL } from '../support/redis-server';

/**
 * A table of `rows` ids; the handler throws for the ids `broken` names (with `partial`, RangeItemsFailedError naming
 * them after handling the rest), and every id it is given is counted.
 */
@Injectable()
class Rows {
  static rows = 0;
  static broken: (id: number, attempt: number) => boolean = () => false;
  static partial = false;
  static handled: number[] = [];

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, Rows.rows - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  handle({ idsRange }: Range, { attempt }: { attempt: number }): void {
    const bad = (idsRange as number[]).filter((id) => Rows.broken(id, attempt));
    if (Rows.partial && bad.length) {
      Rows.handled.push(
        ...(idsRange as number[]).filter((id) => !bad.includes(id)),
      );
      throw new RangeItemsFailedError(bad, `row ${bad[0]} is broken`);
    }
    Rows.handled.push(...(idsRange as number[]));
    if (bad.length) throw new Error(`row ${bad[0]} is broken`);
  }
}

const PREFIX = `dead-ratio-spec-${process.pid}`;
let prefixes = 0;

const inline: ParallelWorkerOptions = {
  workers: 0,
  storage: 'memory',
  rangeSize: 10,
  maxAttempts: 2,
  retryBackoffMs: 1,
  logging: { enabled: false },
};

const opened: { close(): Promise<void> }[] = [];
async function app(options: ParallelWorkerOptions = {}) {
  const moduleRef = await Test.createTestingModule({
    imports: [ParallelWorkerModule.forRoot({ ...inline, ...options })],
    providers: [Rows],
  }).compile();
  const a = await moduleRef.init();
  opened.push(a);
  return a.get(ParallelWorker);
}

const distinct = (ids: number[]) => new Set(ids).size;

beforeEach(() => {
  Rows.rows = 3000;
  Rows.broken = () => false;
  Rows.partial = false;
  Rows.handled = [];
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`{${PREFIX}-*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

describe('maxDeadRatio (in process, workers: 0)', () => {
  it('fails a run whose every range fails long before the table is done, naming the last handler error', async () => {
    const pw = await app();
    Rows.broken = () => true;
    const error = await pw.run('rows').then(
      (summary) => summary,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RunFailedError);
    const failed = error as RunFailedError;
    expect(failed.message).toMatch(
      /^Job "rows" failed \(run [^)]+\): \d+ of the \d+ ranges of job "rows" that ended in this run went to the dead letters \(\d+%, more than maxDeadRatio 0\.5\); the last handler error: row \d+ is broken\. Fix the handler, then retryDead\('rows'\) and run again; or raise maxDeadRatio \(1: never fail for dead letters\)\.$/,
    );
    expect(failed.summary.status).toBe('failed');
    // 300 ranges of 10: it stopped after about 20 of them, not after dead-lettering the table.
    expect(failed.summary.ranges.dead).toBeGreaterThanOrEqual(20);
    expect(failed.summary.ranges.dead).toBeLessThan(60);
    expect(distinct(Rows.handled)).toBeLessThan(Rows.rows / 5);
    const [record] = await pw.history('rows');
    expect(record).toMatchObject({
      status: 'failed',
      error: failed.summary.error,
    });
    const status = await pw.status('rows');
    expect(status).toMatchObject({ state: 'failed', ranges: { leased: 0 } });
  });

  it('keeps going when a few ranges fail, and ends completed with them as dead letters', async () => {
    const pw = await app();
    Rows.rows = 1000;
    Rows.broken = (id) => id % 250 === 0;
    expect(await pw.run('rows')).toMatchObject({
      status: 'completed',
      ids: 960,
      ranges: { completed: 96, dead: 4 },
    });
  });

  it('never fails for dead letters with maxDeadRatio: 1', async () => {
    const pw = await app({ maxDeadRatio: 1 });
    Rows.rows = 300;
    Rows.broken = () => true;
    expect(await pw.run('rows')).toMatchObject({
      status: 'completed',
      ids: 0,
      ranges: { completed: 0, dead: 30 },
    });
  });

  it('counts the first 20 ranges that ended before it judges: a short run with dead letters completes', async () => {
    const pw = await app();
    Rows.rows = 150;
    Rows.broken = () => true;
    expect(await pw.run('rows')).toMatchObject({
      status: 'completed',
      ranges: { completed: 0, dead: 15 },
    });
  });
});

describe('maxDeadRatio with partial failures (RangeItemsFailedError)', () => {
  const partly = {
    rangeSize: 100,
    minRangeSize: 100,
    maxRangeSize: 100,
    maxAttempts: 1,
  };

  it('counts the done part of a partly failed range as a range that ended done: one bad row per range completes', async () => {
    const pw = await app(partly);
    Rows.rows = 5000;
    Rows.partial = true;
    Rows.broken = (id) => id % 100 === 0;
    // 50 ranges each end done in part (99 ids) and dead in part (1 id): half of the ended ranges, not more.
    expect(await pw.run('rows')).toMatchObject({
      status: 'completed',
      ids: 4950,
      ranges: { completed: 50, retried: 0, dead: 50 },
    });
    expect(distinct(Rows.handled)).toBe(4950);
    expect(await pw.deadLetters('rows')).toHaveLength(50);
  });

  it('still fails a run where whole ranges fail besides the partly failed ones', async () => {
    const pw = await app(partly);
    Rows.rows = 5000;
    Rows.partial = true;
    // Every range loses a row; every other range fails whole.
    Rows.broken = (id) =>
      id % 100 === 0 || Math.floor((id - 1) / 100) % 2 === 1;
    await expect(pw.run('rows')).rejects.toThrow(
      /went to the dead letters \(\d+%, more than maxDeadRatio 0\.5\)/,
    );
  });
});

describe('maxDeadRatio on Redis, two hosts', () => {
  it('fails the run on every host and gives every lease back', async () => {
    const storageKey = `${PREFIX}-${++prefixes}`;
    const options = { storage: REDIS_URL, storageKey, concurrency: 2 };
    const [a, b] = [await app(options), await app(options)];
    Rows.broken = () => true;
    const outcomes = await Promise.all(
      [a, b].map((pw) =>
        pw.run('rows').then(
          (summary) => summary,
          (e: unknown) => e,
        ),
      ),
    );
    for (const outcome of outcomes) {
      expect(outcome).toBeInstanceOf(RunFailedError);
      expect((outcome as RunFailedError).message).toMatch(
        /went to the dead letters \(\d+%, more than maxDeadRatio 0\.5\); the last handler error: row \d+ is broken\./,
      );
    }
    expect(distinct(Rows.handled)).toBeLessThan(Rows.rows / 5);
    const store = await a.status('rows');
    expect(store).toMatchObject({ state: 'failed', ranges: { leased: 0 } });
    expect((await b.history('rows'))[0]).toMatchObject({ status: 'failed' });
  });
});

describe('status() of a running run on a host that takes no part in it', () => {
  it('says running while the run holds no lease (waiting out a backoff), as the CLI does; stopped once its hosts left', async () => {
    const storageKey = `${PREFIX}-${++prefixes}`;
    const options = {
      storage: REDIS_URL,
      storageKey,
      leaseMs: 1000,
      retryBackoffMs: 60_000,
      maxRetryBackoffMs: 60_000,
    };
    const [host, other] = [await app(options), await app(options)];
    Rows.rows = 50;
    // The range of id 1 fails once: the run then waits a minute for its retry, holding no lease.
    Rows.broken = (id, attempt) => id === 1 && attempt === 1;
    const run = host.run('rows');
    const redis = new Redis(REDIS_URL);
    const store = new RedisStore(redis, storageKey);
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const s = await store.job('rows').state();
        if (s.counters.completed === 4 && s.leased === 0 && s.retrying === 1)
          break;
        if (Date.now() > deadline)
          throw new Error(`the run never waited: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await other.status('rows')).state).toBe('running');
      const s = await store.job('rows').state();
      expect(renderStatus('rows', s, 0, {})).toMatch(/^job rows: running /);
      await host.stop('rows');
      expect(await run).toMatchObject({ status: 'stopped' });
      // Every host left: the next run() resumes it. Both views say so.
      expect((await other.status('rows')).state).toBe('stopped');
      expect(
        renderStatus('rows', await store.job('rows').state(), 0, {}),
      ).toMatch(/^job rows: stopped /);
    } finally {
      redis.disconnect();
    }
  });
});
