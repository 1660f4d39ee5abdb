import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import {
  type CoordinationStore,
  type ID,
  type LoadContext,
  MemoryStore,
  ParallelWorker,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  RangeHandler,
  RangeLoader,
  RangePartitions,
} from '../../lib';
import { RedisStore } from '../../lib/store/redis.store';

const REDIS_URL = process.env.PW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** 1..rows in three partitions; `during` runs inside the @RangePartitions call, while the run is being planned. */
@Injectable()
class Planned {
  static rows = 1000;
  static handled: ID[] = [];
  static calls = 0;
  static during?: () => Promise<void>;

  @RangePartitions('planned')
  async partitions(): Promise<unknown> {
    Planned.calls++;
    const during = Planned.during;
    Planned.during = undefined;
    await during?.();
    return [
      { after: null, upTo: 250 },
      { after: 250, upTo: 500 },
      { after: 500, upTo: null },
    ];
  }

  @RangeLoader('planned')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const upTo = ctx.partition?.upTo ?? null;
    const end = Math.min(Planned.rows, upTo === null ? Infinity : Number(upTo));
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, end - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('planned')
  handle({ idsRange }: Range): void {
    Planned.handled.push(...idsRange);
  }
}

const all = (n: number, from = 1) =>
  Array.from({ length: n - from + 1 }, (_, i) => from + i);
const sorted = () => [...Planned.handled].sort((x, y) => Number(x) - Number(y));

beforeEach(() => {
  Planned.rows = 1000;
  Planned.handled = [];
  Planned.calls = 0;
  Planned.during = undefined;
});

/**
 * The job ran to its end before it had partitions (its cursor is at 1000);
 * then it gained @RangePartitions, and a reset from another client (the CLI)
 * lands while the plan is being computed. The plan clipped at the old cursor
 * would hand out nothing, in this run and every later one.
 */
function raceReset(
  name: string,
  setup: () => Promise<{
    storage: ParallelWorkerOptions;
    /** Another client of the same store, as the CLI is. */
    other: CoordinationStore;
    close: () => Promise<void>;
  }>,
): void {
  it(`${name}: a reset landing while @RangePartitions runs: every id is handled, and the next run keeps the whole plan`, async () => {
    const { storage, other, close } = await setup();
    try {
      await other
        .job('planned')
        .start({ runId: 'before-partitions', from: 1000 });
      await other
        .job('planned')
        .endRun({ runId: 'before-partitions', state: 'completed' });
      Planned.during = () => other.job('planned').reset();
      const moduleRef = await Test.createTestingModule({
        imports: [
          ParallelWorkerModule.forRoot({
            workers: 0,
            rangeSize: 50,
            logging: { enabled: false },
            ...storage,
          }),
        ],
        providers: [Planned],
      }).compile();
      const app = await moduleRef.init();
      try {
        const pw = app.get(ParallelWorker);
        expect(await pw.run('planned')).toMatchObject({
          status: 'completed',
          ids: 1000,
        });
        expect(sorted()).toEqual(all(1000));
        // The plan stored is the whole one, not the one clipped at the cursor the reset moved.
        expect(
          (await pw.status('planned')).partitions?.map((p) => [
            p.after,
            p.upTo,
            p.cursor,
          ]),
        ).toEqual([
          [null, 250, 250],
          [250, 500, 500],
          [500, null, 1000],
        ]);
        Planned.rows = 1100;
        Planned.handled = [];
        expect(await pw.run('planned')).toMatchObject({ ids: 100 });
        expect(sorted()).toEqual(all(1100, 1001));
      } finally {
        await app.close();
      }
    } finally {
      await close();
    }
  });
}

describe('the partition plan is stored only against the cursor it was computed from', () => {
  raceReset('MemoryStore', () => {
    const store = new MemoryStore();
    return Promise.resolve({
      storage: { storage: store },
      other: store,
      close: () => Promise.resolve(),
    });
  });

  raceReset('RedisStore', () => {
    const client = new Redis(REDIS_URL);
    const cli = new Redis(REDIS_URL);
    const storageKey = `pw-test-${randomBytes(4).toString('hex')}`;
    return Promise.resolve({
      storage: { storage: client, storageKey },
      other: new RedisStore(cli, storageKey),
      close: async () => {
        const keys = await cli.keys(`{${storageKey}:*`);
        if (keys.length) await cli.del(...keys);
        await Promise.all([client.quit(), cli.quit()]);
      },
    });
  });
});
