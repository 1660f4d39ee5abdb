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
    await store.job('users').start({ runId: 'r' });
    await store.job('users').commit({
      owner: 'h',
      expected: null,
      ranges: [{ ids: [1], lastId: 1, prev: null }],
      leaseMs: 10_000,
    });
    const keys = await redis.keys(`*${prefix}*`);
    expect(keys.length).toBeGreaterThan(1);
    for (const key of keys)
      expect(key.startsWith(`{${prefix}:users}:`)).toBe(true);
    await redis.del(...keys);
  });

  it('runs its scripts again after Redis lost its script cache', async () => {
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`;
    const store = new RedisStore(redis, prefix);
    await store.job('users').start({ runId: 'r' });
    await redis.script('FLUSH');
    expect(
      await store.job('users').claim({ owner: 'h', leaseMs: 1000 }),
    ).toEqual({
      type: 'load',
      cursor: null,
    });
    await redis.del(...(await redis.keys(`{${prefix}:*`)));
  });

  it('keeps fencing tokens going up when its token counter goes back, as on a replica promoted after a failover', async () => {
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`;
    const store = new RedisStore(redis, prefix);
    await store.job('users').start({ runId: 'r' });
    const first = await store.job('users').commit({
      owner: 'h',
      expected: null,
      ranges: [
        { ids: [1], lastId: 1, prev: null },
        { ids: [2], lastId: 2, prev: 1 },
      ],
      leaseMs: 10_000,
    });
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
    await store.job('users').release({ owner: 'h', tokens: [issued[0]] });
    const again = await store
      .job('users')
      .claim({ owner: 'h2', leaseMs: 10_000 });
    const next = await store.job('users').commit({
      owner: 'h2',
      expected: 2,
      ranges: [{ ids: [3], lastId: 3, prev: 2 }],
      leaseMs: 10_000,
    });
    if (again.type !== 'lease' || next.type !== 'leased')
      throw new Error(`${again.type} ${next.type}`);
    for (const token of [again.lease.token, next.leases[0].token])
      expect(token).toBeGreaterThan(Math.max(...issued));
    expect(Number.isSafeInteger(next.leases[0].token)).toBe(true);
    // Large tokens work as keys: renewed, completed and counted by token.
    expect(
      await store.job('users').heartbeat({
        owner: 'h2',
        tokens: [again.lease.token, next.leases[0].token],
        leaseMs: 10_000,
      }),
    ).toEqual([]);
    expect(
      await store.job('users').complete({
        owner: 'h2',
        tokens: [again.lease.token, next.leases[0].token],
      }),
    ).toEqual([true, true]);
    expect(
      await store.job('users').complete({ owner: 'h', tokens: [issued[1]] }),
    ).toEqual([true]);
    expect((await store.job('users').state()).counters).toMatchObject({
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
    await store.job('users').start({ runId: 'r' });
  });
  afterEach(async () => {
    const keys = await redis.keys(`{${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    client.disconnect();
    await redis.quit();
    await proxy.close();
  });

  it('a commit sent twice leases its ranges once, and the host gets those leases', async () => {
    expect(
      await store
        .job('users')
        .claim({ owner: 'h', leaseMs: 10_000, request: '1' }),
    ).toEqual({
      type: 'load',
      cursor: null,
    });
    proxy.loseNextReply();
    const r = await store.job('users').commit({
      owner: 'h',
      expected: null,
      ranges: [
        { ids: [1, 2], lastId: 2, prev: null },
        { ids: [3], lastId: 3, prev: 2 },
      ],
      leaseMs: 10_000,
      request: '2',
    });
    expect(r.type).toBe('leased');
    const tokens = (r as { leases: { token: number }[] }).leases.map(
      (l) => l.token,
    );
    // Every lease in the store is one the host knows: nothing is orphaned to expire and cost an attempt.
    expect((await store.job('users').state()).leased).toBe(2);
    expect(await store.job('users').complete({ owner: 'h', tokens })).toEqual([
      true,
      true,
    ]);
    expect((await store.job('users').state()).counters).toMatchObject({
      ids: 3,
      completed: 2,
      retried: 0,
    });
  });

  it('a claim sent twice hands its range out once, to this host', async () => {
    const c = await store.job('users').commit({
      owner: 'h',
      expected: null,
      ranges: [{ ids: [1], lastId: 1, prev: null }],
      leaseMs: 10_000,
      request: '1',
    });
    await store.job('users').release({
      owner: 'h',
      tokens: (c as { leases: { token: number }[] }).leases.map((l) => l.token),
    });
    proxy.loseNextReply();
    const claim = await store
      .job('users')
      .claim({ owner: 'h', leaseMs: 10_000, request: '2' });
    expect(claim).toMatchObject({
      type: 'lease',
      reason: 'released',
      lease: { attempt: 1, range: { ids: [1] } },
    });
    expect((await store.job('users').state()).leased).toBe(1);
    expect(
      await store.job('users').complete({
        owner: 'h',
        tokens: [(claim as { lease: { token: number } }).lease.token],
      }),
    ).toEqual([true]);
  });
});
