import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ID,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  RangeHandler,
  RangeLoader,
  RedisStore,
  RunRefusedError,
} from '../../lib';
import { startFixture } from '../support/fixture';
import { REDIS_URL } from '../support/redis-server';
import { createSqliteItems, sqliteCounts } from '../support/sqlite';

const ROWS = 20_000;

/** Another app's job of the same name: another class, its own table. */
@Injectable()
class ArchiveItems {
  @RangeLoader('items')
  next(lastId: ID | null): number[] {
    return lastId === null ? [1, 2, 3] : [];
  }

  @RangeHandler('items')
  handle(_range: Range): void {}
}

/**
 * App A (the fixture, ItemsJob) runs job `items` on real cluster workers;
 * app B (ArchiveItems) shares its Redis and storageKey. B may neither run nor
 * steer A's job.
 */
describe('two apps declaring the same job on one Redis (e2e)', () => {
  it("refuses every call of the other app with A's loader and handler named, and A handles every row once", async () => {
    const prefix = `pw-apps-${randomBytes(4).toString('hex')}`;
    const db = createSqliteItems(ROWS);
    // A's last range waits for this file: B's calls all happen while A's run is going on.
    const hold = join(mkdtempSync(join(tmpdir(), 'pw-hold-')), 'go');
    const a = startFixture({
      FIXTURE_DB: db,
      REDIS_URL,
      FIXTURE_PREFIX: prefix,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 250,
      FIXTURE_MAX_ATTEMPTS: 1,
      FIXTURE_FAIL_ALWAYS: '1000',
      FIXTURE_HOLD_IDS: String(ROWS),
      FIXTURE_HOLD_FILE: hold,
    });
    const redis = new Redis(REDIS_URL);
    const b = await (
      await Test.createTestingModule({
        imports: [
          ParallelWorkerModule.forRoot({
            storage: redis,
            storageKey: prefix,
            workers: 0,
            logging: { enabled: false },
          }),
        ],
        providers: [ArchiveItems],
      }).compile()
    ).init();
    try {
      // B acts while A's run is held open and has a dead letter to steer.
      await a.waitFor(/^HOLD_RANGE/m, 60_000);
      const operator = new RedisStore(redis, prefix);
      while ((await operator.job('items').state()).dead < 1)
        await new Promise((r) => setTimeout(r, 50));
      expect(await operator.job('items').state()).toMatchObject({
        state: 'running',
        control: 'run',
      });
      const worker = b.get(ParallelWorker);
      const calls: Record<string, () => Promise<unknown>> = {
        run: () => worker.run('items'),
        status: () => worker.status('items'),
        pause: () => worker.pause('items'),
        resume: () => worker.resume('items'),
        cancel: () => worker.cancel('items'),
        reset: () => worker.reset('items'),
        retryDead: () => worker.retryDead('items'),
        history: () => worker.history('items'),
        deadLetters: () => worker.deadLetters('items'),
      };
      for (const [name, call] of Object.entries(calls)) {
        const outcome = await call().then(
          (value) => ({ resolved: value }),
          (e: unknown) => ({ rejected: e }),
        );
        expect({ name, outcome }).toEqual({
          name,
          outcome: { rejected: expect.any(RunRefusedError) },
        });
        expect((outcome as { rejected: Error }).rejected.message).toMatch(
          /^Job "items" in this store belongs to another app, which declares it as ItemsJob\.next \+ ItemsJob\.handle; this app declares it as ArchiveItems\.next \+ ArchiveItems\.handle/,
        );
      }

      // Nothing B did changed A's run: still running, not paused.
      expect(await operator.job('items').state()).toMatchObject({
        state: 'running',
        control: 'run',
        dead: 1,
      });
      writeFileSync(hold, '');
      const done = await a.exited;
      expect(done.code).toBe(0);
      expect(done.summary).toMatchObject({
        status: 'completed',
        ids: ROWS - 250,
        ranges: { dead: 1 },
      });
      const counts = sqliteCounts(db);
      expect(counts).toMatchObject({ duplicated: [], total: ROWS });
      expect(counts.once).toBe(ROWS - 250);
      expect(await operator.job('items').deadLetters()).toHaveLength(1);
    } finally {
      a.child.kill('SIGKILL');
      await b.close();
      const keys = await redis.keys(`{${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
  });
});
