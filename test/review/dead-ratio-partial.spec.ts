import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  type ID,
  type LoadContext,
  MemoryStore,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  RangeHandler,
  RangeItemsFailedError,
  RangeLoader,
} from '../../lib';

/**
 * maxDeadRatio with partial failures: the README says a handler that throws
 * RangeItemsFailedError(ids) "has the rest of its range counted as done …
 * so one bad row costs one row". One bad row in each range of 100 (1% of the
 * table) should not fail the run as "100% of the ranges went to the dead letters".
 */
@Injectable()
class Rows {
  static handled = new Set<number>();

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, 5000 - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  handle({ idsRange }: Range): void {
    const bad = (idsRange as number[]).filter((id) => id % 100 === 0);
    for (const id of idsRange as number[])
      if (id % 100 !== 0) Rows.handled.add(id);
    if (bad.length) throw new RangeItemsFailedError(bad, 'row is broken');
  }
}

describe('review: maxDeadRatio with RangeItemsFailedError', () => {
  it('one bad row per range (1% of rows): the run is not failed as if every range went dead', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({
          storage: new MemoryStore(),
          workers: 0,
          rangeSize: 100,
          minRangeSize: 100,
          maxRangeSize: 100,
          maxAttempts: 1,
          retryBackoffMs: 1,
          logging: { enabled: false },
        }),
      ],
      providers: [Rows],
    }).compile();
    const app = await moduleRef.init();
    try {
      const pw = app.get(ParallelWorker);
      const outcome = await pw.run('rows').then(
        (s) => `${s.status}: ${s.ids} ids, ${s.ranges.dead} dead`,
        (e: Error) => `rejected: ${e.message}`,
      );
      expect(outcome).toMatch(/^completed/);
    } finally {
      await app.close();
    }
  }, 30_000);
});
