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
  type RangeContext,
  RangeHandler,
  RangeLoader,
  RangePartitions,
  RunFailedError,
} from '../../lib';
import { RedisStore } from '../../lib/store/redis.store';
import { OwnRedis, REDIS_URL } from '../support/redis-server';

/**
 * Parts of a job's Redis state lost while its run goes on (one key deleted,
 * or evicted under allkeys-lru): the run either loses no id or fails with
 * "state lost", never `completed` with ids missing; the next run with `from`
 * (or after `reset`) goes through at once.
 */

const ROWS = 300;
const RANGE = 10;
/** Ranges whose first attempt fails, so they wait out a retry backoff. */
const ONCE = new Set<number>([101, 201]);
/** A range that always fails: a dead letter once its attempts are spent. */
const POISON = 1;
/** A range whose handler holds its lease until the test lets it go. */
const HELD = 291;

const sink = new Set<ID>();
let gate: { open: Promise<void>; release: () => void };
const newGate = () => {
  let release!: () => void;
  const open = new Promise<void>((r) => (release = r));
  gate = { open, release };
};

@Injectable()
class Rows {
  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    const limit = Math.min(RANGE, ctx.limit);
    return Array.from(
      { length: Math.max(0, Math.min(limit, ROWS - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  handle(range: Range, ctx: RangeContext): Promise<void> {
    return handle(range, ctx);
  }
}

/** The same rows in two partitions, (0, 150] and (150, …): their bounds and cursors are a part of the job's state. */
@Injectable()
class PartedRows {
  @RangePartitions('parted')
  partitions() {
    return [
      { after: null, upTo: 150 },
      { after: 150, upTo: null },
    ];
  }

  @RangeLoader('parted')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const upTo = Number(ctx.partition?.upTo ?? ROWS);
    const from = Number(lastId ?? 0) + 1;
    const limit = Math.min(RANGE, ctx.limit);
    return Array.from(
      { length: Math.max(0, Math.min(limit, upTo - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('parted')
  handle(range: Range, ctx: RangeContext): Promise<void> {
    return handle(range, ctx);
  }
}

async function handle({ idsRange }: Range, ctx: RangeContext): Promise<void> {
  const first = Number(idsRange[0]);
  if (first === POISON) throw new Error('poison');
  if (ONCE.has(first) && ctx.attempt === 1) throw new Error('once');
  if (first === HELD && ctx.attempt === 1) {
    const aborted = new Promise<void>((r) =>
      ctx.signal.addEventListener('abort', () => r()),
    );
    await Promise.race([gate.open, aborted]);
  }
  // A handler that obeys its signal: an aborted range is not finished.
  for (const id of idsRange) {
    ctx.signal.throwIfAborted();
    sink.add(id);
  }
}

async function app(url: string, storageKey: string, retryBackoffMs = 2000) {
  const redis = new Redis(url);
  const moduleRef = await Test.createTestingModule({
    imports: [
      ParallelWorkerModule.forRoot({
        storage: redis,
        storageKey,
        workers: 0,
        concurrency: 4,
        rangeSize: RANGE,
        minRangeSize: RANGE,
        maxRangeSize: RANGE,
        maxAttempts: 2,
        retryBackoffMs,
        maxRetryBackoffMs: retryBackoffMs,
        leaseMs: 1000,
        heartbeatMs: 200,
        logging: { enabled: false },
      }),
    ],
    providers: [Rows, PartedRows],
  }).compile();
  const nest = await moduleRef.init();
  return {
    pw: nest.get(ParallelWorker),
    redis,
    close: async () => {
      await nest.close();
      redis.disconnect();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ids neither handled nor kept as a dead letter. */
async function missing(pw: ParallelWorker, job = 'rows'): Promise<number[]> {
  const dead = new Set<ID>(
    (await pw.deadLetters(job)).flatMap((d) => d.range.ids),
  );
  return Array.from({ length: ROWS }, (_, i) => i + 1).filter(
    (id) => !sink.has(id) && !dead.has(id),
  );
}

/** What a run came to: its status, or its error's message. */
async function outcome(
  run: Promise<{ status: string }>,
): Promise<{ status: string; error?: string }> {
  try {
    return { status: (await run).status };
  } catch (e) {
    return {
      status: e instanceof RunFailedError ? 'failed' : 'rejected',
      error: (e as Error).message,
    };
  }
}

type Moment = (s: {
  leased: number;
  retrying: number;
  dead: number;
  exhausted: boolean;
}) => boolean;

/** While the held range holds its lease and loading is over. */
const holding: Moment = (s) => s.exhausted && s.leased >= 1;
/** While a range waits out its retry backoff. */
const backingOff: Moment = (s) => s.retrying >= 1;
/** Once a dead letter was written (the held range still running). */
const deadLettered: Moment = (s) => s.dead >= 1 && s.leased >= 1;

describe('RedisStore: state lost in part is state lost', () => {
  beforeEach(() => {
    sink.clear();
    newGate();
  });

  const trials: [
    string,
    string[],
    Moment,
    'from-null' | 'from-cursor' | 'from-stored-cursor' | 'reset',
  ][] = [
    ['rows', ['meta'], holding, 'from-null'],
    ['rows', ['leases'], holding, 'from-null'],
    ['rows', ['deadlines'], holding, 'from-cursor'],
    ['rows', ['pending'], backingOff, 'from-null'],
    ['rows', ['pdata'], backingOff, 'from-cursor'],
    ['rows', ['pending', 'pdata'], backingOff, 'reset'],
    // From where the lost run had loaded to: the retries whose due times were lost are handed out again.
    ['rows', ['pending'], backingOff, 'from-stored-cursor'],
    ['rows', ['dead'], deadLettered, 'from-null'],
    ['parted', ['parts'], holding, 'from-null'],
  ];

  it.each(trials)(
    'job %s, deleting %j mid-run: no id lost, or the run fails "state lost"; the next run recovers (%#)',
    async (job, keys, moment, recovery) => {
      const storageKey = `pw-loss-${randomBytes(4).toString('hex')}`;
      const a = await app(REDIS_URL, storageKey);
      try {
        const probe = new RedisStore(a.redis, storageKey);
        const run = outcome(a.pw.run(job));
        for (;;) {
          if (moment(await probe.job(job).state())) break;
          await sleep(10);
        }
        await a.redis.del(...keys.map((k) => `{${storageKey}:${job}}:${k}`));
        gate.release();
        const first = await run;
        const lost = await missing(a.pw, job);
        if (first.status === 'completed') expect(lost).toEqual([]);
        else {
          expect(first.status).toBe('failed');
          expect(first.error).toMatch(/state .*lost|was lost/);
          expect(first.error).not.toMatch(/decode|ERR |script/i);
          // A part lost (not the whole run): where to go on from is the user's call; run() without from is refused.
          if (/part of the coordination state/.test(first.error as string))
            await expect(a.pw.run(job)).rejects.toThrow(
              new RegExp(
                `part of the coordination state of job "${job}".* was lost.*run\\('${job}', \\{ from \\}\\)`,
              ),
            );
        }
        // The job is startable again at once.
        newGate();
        gate.release();
        if (recovery === 'reset') await a.pw.reset(job);
        const { cursor } = await a.pw.status(job);
        const next = await outcome(
          a.pw.run(
            job,
            recovery === 'from-cursor'
              ? { from: 0 }
              : recovery === 'from-stored-cursor'
                ? { from: cursor }
                : recovery === 'from-null'
                  ? { from: null }
                  : {},
          ),
        );
        expect(next).toEqual({ status: 'completed' });
        expect(await missing(a.pw, job)).toEqual([]);
      } finally {
        gate.release();
        await a.close();
        const r = new Redis(REDIS_URL);
        const left = await r.keys(`{${storageKey}:*`);
        if (left.length) await r.del(...left);
        r.disconnect();
      }
    },
    60_000,
  );

  // META lost with another part of a partitioned job's state (evicted together under a squeeze): the partitions'
  // cursors (PARTS) outlive the record of sizes kept in META. Before, the run() the "was lost" error recommended
  // ended `completed` with ids 1-10, 101-110 and 201-210 (retries) or 291-300 (the held lease) never handled.
  const metaTrials: [string[], Moment, boolean, 'from-null' | 'reset'][] = [
    // The held range's handler lets go only once the first run has ended (it was aborted then).
    [['meta', 'leases', 'deadlines'], holding, true, 'from-null'],
    [['meta', 'pending', 'pdata'], backingOff, false, 'reset'],
    [['meta'], holding, false, 'from-null'],
  ];

  it.each(metaTrials)(
    'job parted, deleting %j mid-run: run() is refused, never completed with ids missing; from/reset handles every id',
    async (keys, moment, holdOn, recovery) => {
      const storageKey = `pw-loss-${randomBytes(4).toString('hex')}`;
      const a = await app(REDIS_URL, storageKey);
      try {
        const probe = new RedisStore(a.redis, storageKey);
        const run = outcome(a.pw.run('parted'));
        while (!moment(await probe.job('parted').state())) await sleep(10);
        await a.redis.del(...keys.map((k) => `{${storageKey}:parted}:${k}`));
        if (!holdOn) gate.release();
        const first = await run;
        gate.release();
        expect(first.status).toBe('failed');
        expect(first.error).toMatch(/state .*lost|was lost/);
        // The plain run() the error may have led the user to: refused, with where to go on from.
        newGate();
        gate.release();
        const plain = await outcome(a.pw.run('parted'));
        expect(plain).toEqual({
          status: 'rejected',
          error: expect.stringMatching(
            /part of the coordination state of job "parted".* was lost from the store \(meta.*run\('parted', \{ from \}\)/,
          ),
        });
        if (recovery === 'reset') await a.pw.reset('parted');
        const next = await outcome(
          a.pw.run('parted', recovery === 'from-null' ? { from: null } : {}),
        );
        expect(next).toEqual({ status: 'completed' });
        expect(await missing(a.pw, 'parted')).toEqual([]);
      } finally {
        gate.release();
        await a.close();
        const r = new Redis(REDIS_URL);
        const left = await r.keys(`{${storageKey}:*`);
        if (left.length) await r.del(...left);
        r.disconnect();
      }
    },
    60_000,
  );

  it('META lost: with a lease left, run() is refused naming meta and from starts again; with nothing left, a run starts over', async () => {
    const storageKey = `pw-loss-${randomBytes(4).toString('hex')}`;
    const redis = new Redis(REDIS_URL);
    const store = new RedisStore(redis, storageKey);
    const meta = `{${storageKey}:rows}:meta`;
    try {
      await store.job('rows').start({ runId: 'r' });
      await store.job('rows').claim({ owner: 'A', leaseMs: 60_000 });
      await store.job('rows').commit({
        owner: 'A',
        expected: null,
        ranges: [{ ids: [1, 2], lastId: 2, prev: null }],
        leaseMs: 60_000,
      });
      await redis.del(meta);
      await expect(store.job('rows').start({ runId: 'r2' })).rejects.toThrow(
        /part of the coordination state of job "rows" was lost from the store \(meta: /,
      );
      await store.job('rows').leave({ owner: 'A' });
      expect(
        await store.job('rows').start({ runId: 'r3', from: null }),
      ).toMatchObject({
        runId: 'r3',
      });
      // The lease left is the state again: it expires and goes out again, nothing skipped.
      expect((await store.job('rows').state()).error).toBeUndefined();
      await redis.del(meta, `{${storageKey}:rows}:leases`);
      await redis.del(`{${storageKey}:rows}:deadlines`);
      expect(await store.job('rows').start({ runId: 'r4' })).toMatchObject({
        runId: 'r4',
      });
      expect((await store.job('rows').state()).cursor).toBeNull();
    } finally {
      const left = await redis.keys(`{${storageKey}:*`);
      if (left.length) await redis.del(...left);
      redis.disconnect();
    }
  });

  it('refuses reset while the hosts of a run failed for state lost have not left: one would take the idle job for its end', async () => {
    const storageKey = `pw-loss-${randomBytes(4).toString('hex')}`;
    const redis = new Redis(REDIS_URL);
    const store = new RedisStore(redis, storageKey);
    try {
      await store.job('rows').start({ runId: 'r' });
      expect(
        await store.job('rows').claim({ owner: 'A', leaseMs: 60_000 }),
      ).toMatchObject({
        type: 'load',
      });
      await store.job('rows').commit({
        owner: 'A',
        expected: null,
        ranges: [{ ids: [1, 2], lastId: 2, prev: null }],
        leaseMs: 60_000,
      });
      await redis.del(`{${storageKey}:rows}:deadlines`);
      await expect(store.job('rows').reset()).rejects.toThrow(
        /^run r is active/,
      );
      expect(
        await store.job('rows').claim({ owner: 'A', leaseMs: 60_000 }),
      ).toMatchObject({
        type: 'failed',
        error: expect.stringMatching(
          /part of the coordination state of job "rows" \(run r\) was lost from the store \(deadlines/,
        ),
      });
      await store.job('rows').leave({ owner: 'A' });
      await store.job('rows').reset();
      expect((await store.job('rows').state()).state).toBe('idle');
    } finally {
      const left = await redis.keys(`{${storageKey}:*`);
      if (left.length) await redis.del(...left);
      redis.disconnect();
    }
  });

  it('an allkeys-lru Redis squeezed mid-run: never completed with ids missing; the next run with from recovers', async () => {
    const server = new OwnRedis();
    await server.start();
    const admin = new Redis(server.url);
    const storageKey = 'pw-evict';
    const a = await app(server.url, storageKey, 8000);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await admin.config('SET', 'maxmemory-samples', '10');
      // A host warns once, at its first run, that this Redis may evict a job's state.
      const warned: string[] = [];
      const logger = { warn: (m: string) => warned.push(m), debug: () => {} };
      const looking = new RedisStore(
        a.redis,
        'pw-look',
        undefined,
        logger as never,
      );
      await looking.job('look').start({ runId: 'r1' });
      await looking.job('look').start({ runId: 'r2' });
      expect(warned).toEqual([
        expect.stringMatching(
          /maxmemory-policy allkeys-lru: .* evict a job's coordination state/,
        ),
      ]);
      const probe = new RedisStore(a.redis, storageKey);
      const run = outcome(a.pw.run('rows'));
      while (!backingOff(await probe.job('rows').state())) await sleep(10);
      // Redis keeps access times to the second: the keys no script touches while the run waits (the retries' ranges)
      // are then older than every filler, as after a long backoff in a busy Redis.
      await sleep(2000);
      // The squeeze: a little room, then filler until Redis evicts a key of the job (the one it saw least used).
      const ours = await admin.keys(`{${storageKey}:rows}:*`);
      const used = Number(
        /used_memory:(\d+)/.exec(await admin.info('memory'))?.[1],
      );
      await admin.config('SET', 'maxmemory', String(used + 200_000));
      const filler = 'x'.repeat(20_000);
      let gone: string[] = [];
      for (let i = 0; i < 1000 && !gone.length; i++) {
        await admin.set(`filler:${i}`, filler);
        const left = new Set(await admin.keys(`{${storageKey}:rows}:*`));
        gone = ours.filter((k) => !left.has(k));
      }
      expect(gone.length).toBeGreaterThan(0);
      await admin.config('SET', 'maxmemory', '0');
      gate.release();
      const first = await run;
      if (first.status === 'completed') expect(await missing(a.pw)).toEqual([]);
      else {
        expect(first.status).toBe('failed');
        expect(first.error).toMatch(/state .*lost|was lost/);
      }
      newGate();
      gate.release();
      expect(await outcome(a.pw.run('rows', { from: null }))).toEqual({
        status: 'completed',
      });
      expect(await missing(a.pw)).toEqual([]);
    } finally {
      gate.release();
      await a.close();
      admin.disconnect();
      server.stop();
    }
  }, 60_000);
});
