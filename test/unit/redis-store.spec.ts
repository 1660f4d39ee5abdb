import Redis from 'ioredis';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { RedisStore } from '../../lib/store/redis.store';
import { storeContract } from '../contract/store.contract';

const REDIS_URL = process.env.PW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

storeContract(
  'RedisStore',
  async () => {
    const redis = new Redis(REDIS_URL);
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`;
    return {
      store: new RedisStore(redis, prefix),
      job: 'items',
      reopen: () => new RedisStore(redis, prefix),
      close: async () => {
        const keys = await redis.keys(`{${prefix}:*`);
        if (keys.length) await redis.del(...keys);
        await redis.quit();
      },
    };
  },
  { reopens: true },
);

describe('RedisStore', () => {
  let redis: Redis;
  beforeAll(() => (redis = new Redis(REDIS_URL)));
  afterAll(() => redis.quit());

  it('keeps every key of a job under one hash tag', async () => {
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`;
    const store = new RedisStore(redis, prefix);
    await store.startRun('users', 'r');
    await store.commit(
      'users',
      'h',
      null,
      [{ ids: [1], lastId: 1, prev: null }],
      10_000,
    );
    const keys = await redis.keys(`*${prefix}*`);
    expect(keys.length).toBeGreaterThan(1);
    for (const key of keys)
      expect(key.startsWith(`{${prefix}:users}:`)).toBe(true);
    await redis.del(...keys);
  });

  it('runs its scripts again after Redis lost its script cache', async () => {
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`;
    const store = new RedisStore(redis, prefix);
    await store.startRun('users', 'r');
    await redis.script('FLUSH');
    expect(await store.claim('users', 'h', 1000)).toEqual({
      type: 'load',
      cursor: null,
    });
    await redis.del(...(await redis.keys(`{${prefix}:*`)));
  });

  it('keeps fencing tokens going up when its token counter goes back, as on a replica promoted after a failover', async () => {
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`;
    const store = new RedisStore(redis, prefix);
    await store.startRun('users', 'r');
    const first = await store.commit(
      'users',
      'h',
      null,
      [
        { ids: [1], lastId: 1, prev: null },
        { ids: [2], lastId: 2, prev: 1 },
      ],
      10_000,
    );
    if (first.type !== 'leased') throw new Error(first.type);
    const issued = first.leases.map((l) => l.token);
    // The replica had not seen those tokens yet: its counter is where the master's was before them. A promotion takes
    // seconds; at the least, Redis time has moved past the millisecond of the last token the old master issued.
    const ms = async () => {
      const [s, us] = await redis.time();
      return Number(s) * 1000 + Math.floor(Number(us) / 1000);
    };
    const issuedAt = await ms();
    while ((await ms()) <= issuedAt) await new Promise((r) => setImmediate(r));
    await redis.hset(`{${prefix}:users}:meta`, 'token', 0);
    await store.release('users', 'h', [issued[0]]);
    const again = await store.claim('users', 'h2', 10_000);
    const next = await store.commit(
      'users',
      'h2',
      2,
      [{ ids: [3], lastId: 3, prev: 2 }],
      10_000,
    );
    if (again.type !== 'lease' || next.type !== 'leased')
      throw new Error(`${again.type} ${next.type}`);
    for (const token of [again.lease.token, next.leases[0].token])
      expect(token).toBeGreaterThan(Math.max(...issued));
    expect(Number.isSafeInteger(next.leases[0].token)).toBe(true);
    // Large tokens work as keys: renewed, completed and counted by token.
    expect(
      await store.heartbeat(
        'users',
        'h2',
        [again.lease.token, next.leases[0].token],
        10_000,
      ),
    ).toEqual([]);
    expect(
      await store.complete('users', 'h2', [
        again.lease.token,
        next.leases[0].token,
      ]),
    ).toEqual([true, true]);
    expect(await store.complete('users', 'h', [issued[1]])).toEqual([true]);
    expect((await store.state('users')).counters).toMatchObject({
      completed: 3,
      ids: 3,
    });
    await redis.del(...(await redis.keys(`{${prefix}:*`)));
  });
});

/**
 * A TCP hop between ioredis and Redis that can lose the next reply: the
 * command ran in Redis, the connection drops before its answer arrives, and
 * ioredis sends it again on the new connection (its default).
 */
async function lossyProxy(): Promise<{
  port: number;
  loseNextReply(): void;
  close(): Promise<void>;
}> {
  const { hostname, port } = new URL(REDIS_URL);
  let lose = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (!lose) return void client.write(d);
      lose = false;
      client.destroy();
      upstream.destroy();
    });
    const end = () => (client.destroy(), upstream.destroy());
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    loseNextReply: () => void (lose = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('RedisStore over a connection that drops before the reply (the client sends the script again)', () => {
  let proxy: Awaited<ReturnType<typeof lossyProxy>>;
  let client: Redis;
  let redis: Redis;
  let store: RedisStore;
  let prefix: string;
  beforeEach(async () => {
    proxy = await lossyProxy();
    client = new Redis({
      host: '127.0.0.1',
      port: proxy.port,
      retryStrategy: () => 20,
    });
    redis = new Redis(REDIS_URL);
    prefix = `pw-test-${randomBytes(4).toString('hex')}`;
    store = new RedisStore(client, prefix);
    await store.startRun('users', 'r');
  });
  afterEach(async () => {
    const keys = await redis.keys(`{${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    client.disconnect();
    await redis.quit();
    await proxy.close();
  });

  it('a commit sent twice leases its ranges once, and the host gets those leases', async () => {
    expect(await store.claim('users', 'h', 10_000, '1')).toEqual({
      type: 'load',
      cursor: null,
    });
    proxy.loseNextReply();
    const r = await store.commit(
      'users',
      'h',
      null,
      [
        { ids: [1, 2], lastId: 2, prev: null },
        { ids: [3], lastId: 3, prev: 2 },
      ],
      10_000,
      '2',
    );
    expect(r.type).toBe('leased');
    const tokens = (r as { leases: { token: number }[] }).leases.map(
      (l) => l.token,
    );
    // Every lease in the store is one the host knows: nothing is orphaned to expire and cost an attempt.
    expect((await store.state('users')).leased).toBe(2);
    expect(await store.complete('users', 'h', tokens)).toEqual([true, true]);
    expect((await store.state('users')).counters).toMatchObject({
      ids: 3,
      completed: 2,
      retried: 0,
    });
  });

  it('a claim sent twice hands its range out once, to this host', async () => {
    const c = await store.commit(
      'users',
      'h',
      null,
      [{ ids: [1], lastId: 1, prev: null }],
      10_000,
      '1',
    );
    await store.release(
      'users',
      'h',
      (c as { leases: { token: number }[] }).leases.map((l) => l.token),
    );
    proxy.loseNextReply();
    const claim = await store.claim('users', 'h', 10_000, '2');
    expect(claim).toMatchObject({
      type: 'lease',
      reason: 'released',
      lease: { attempt: 1, range: { ids: [1] } },
    });
    expect((await store.state('users')).leased).toBe(1);
    expect(
      await store.complete('users', 'h', [
        (claim as { lease: { token: number } }).lease.token,
      ]),
    ).toEqual([true]);
  });
});
