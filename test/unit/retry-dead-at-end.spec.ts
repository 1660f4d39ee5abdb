import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  type JobStore,
  type ID,
  type LoadContext,
  MemoryStore,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  RangeHandler,
  RangeLoader,
} from '../../lib';
import { replaceCalls } from '../support/replace-calls';

/**
 * retryDead() (from the CLI, another host, or this app) landing between a
 * host's claim that answered `done` and its end of the run: the dead letters
 * move to the retries of the running run, and the run still ends `completed`
 * with neither them handled nor any dead letter left to show for them.
 */
@Injectable()
class Rows {
  static handled = new Set<number>();
  static fixed = false;

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, 100 - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  handle({ idsRange }: Range): void {
    if (!Rows.fixed && Number(idsRange[0]) === 1) throw new Error('broken');
    for (const id of idsRange as number[]) Rows.handled.add(id);
  }
}

/** The interleaving, made certain: the operator's retryDead lands right after a claim answered done. */
class RetryDeadAtTheEnd extends MemoryStore {
  private done = false;
  override job(name: string): JobStore {
    const job = super.job(name);
    return replaceCalls(job, {
      claim: async (o) => {
        const claim = await job.claim(o);
        if (claim.type === 'done' && !this.done) {
          this.done = true;
          Rows.fixed = true;
          await job.retryDead();
        }
        return claim;
      },
    });
  }
}

describe('retryDead between a claim answered done and the end of the run', () => {
  it('a completed run leaves no id unhandled that is not a dead letter', async () => {
    const store = new RetryDeadAtTheEnd();
    const moduleRef = await Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({
          storage: store,
          workers: 0,
          rangeSize: 10,
          minRangeSize: 10,
          maxRangeSize: 10,
          maxAttempts: 1,
          maxDeadRatio: 1,
          logging: { enabled: false },
        }),
      ],
      providers: [Rows],
    }).compile();
    const app = await moduleRef.init();
    try {
      const pw = app.get(ParallelWorker);
      const summary = await pw.run('rows');
      const dead = new Set(
        (await pw.deadLetters('rows')).flatMap((d) => d.range.ids),
      );
      const unaccounted = Array.from({ length: 100 }, (_, i) => i + 1).filter(
        (id) => !Rows.handled.has(id) && !dead.has(id),
      );
      const state = await pw.status('rows');
      expect({
        status: summary.status,
        unaccounted,
        state: state.state,
      }).toEqual({
        status: 'completed',
        unaccounted: [],
        state: 'completed',
      });
    } finally {
      await app.close();
    }
  }, 30_000);
});
