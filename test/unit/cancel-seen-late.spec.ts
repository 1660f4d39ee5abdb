import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import {
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  RangeHandler,
  RangeLoader,
  RunFailedError,
} from '../../lib';
import { REDIS_URL } from '../support/redis-server';

const ROWS = 2000;

@Injectable()
class Rows {
  static handled: ID[] = [];

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, ROWS - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  async handle({ idsRange }: Range): Promise<void> {
    await new Promise((r) => setTimeout(r, 20));
    Rows.handled.push(...idsRange);
  }
}

/** Two hosts of one app (two ParallelWorker instances) on the real Redis, one job, one storageKey. */
describe('a cancel seen late, on real Redis', () => {
  const clients: Redis[] = [];
  const apps: { close(): Promise<unknown> }[] = [];
  let prefix: string;

  beforeEach(() => {
    Rows.handled = [];
    prefix = `pw-test-${randomBytes(4).toString('hex')}`;
  });
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`{${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    for (const c of clients.splice(0)) await c.quit();
  });

  async function host(): Promise<ParallelWorker> {
    const storage = new Redis(REDIS_URL);
    clients.push(storage);
    const moduleRef = await Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({
          workers: 0,
          rangeSize: 10,
          concurrency: 2,
          storage,
          storageKey: prefix,
          logging: { enabled: false },
        }),
      ],
      providers: [Rows],
    }).compile();
    const app = await moduleRef.init();
    apps.push(app);
    return app.get(ParallelWorker);
  }

  const handledSome = async () => {
    while (Rows.handled.length < 100)
      await new Promise((r) => setTimeout(r, 5));
  };

  it('resolves stopped on a host that sees the cancel only after another host started the next run', async () => {
    const [a, b] = [await host(), await host()];
    const first = a.run('rows');
    await handledSome();
    await b.cancel('rows');
    // The next run starts at once, before host a looks at the store again (it does so every 500 ms).
    const next = b.run('rows');
    expect(await first).toMatchObject({ status: 'stopped' });
    expect(await next).toMatchObject({ status: 'completed' });
    expect(new Set(Rows.handled.map(Number)).size).toBe(ROWS);
  });

  it('still fails "state lost" when the run vanished from the store and another host started a new one', async () => {
    const [a, b] = [await host(), await host()];
    const first = a.run('rows');
    const failed = first.catch((e: unknown) => e);
    await handledSome();
    const redis = new Redis(REDIS_URL);
    clients.push(redis);
    await redis.del(...(await redis.keys(`{${prefix}:rows}*`)));
    const next = b.run('rows');
    const error = await failed;
    expect(error).toBeInstanceOf(RunFailedError);
    expect((error as Error).message).toMatch(
      /the coordination state of run [0-9a-f-]+ of job "rows" was lost from the store/,
    );
    expect(await next).toMatchObject({ status: 'completed' });
  });
});
