import Redis from 'ioredis';
import type { RunRecord } from '../../lib';
import { RedisStore } from '../../lib/store/redis.store';
import { runCli } from '../support/cli';
import { startFixture } from '../support/fixture';
import { DATABASE_URL } from '../support/postgres';
import { OwnRedisCluster } from '../support/redis-cluster';
import { OwnRedis } from '../support/redis-server';
import { OwnRedisSentinel } from '../support/redis-sentinel';

/** The password of every server here: it must never be printed. */
const PW = 'hunter2-s3cret';
const PREFIX = 'pw-secrets';

const record = (runId: string, error: string): RunRecord => ({
  runId,
  job: 'items',
  params: { note: `see redis://:${PW}@10.0.0.9:6379` },
  status: 'failed',
  startedBy: null,
  host: null,
  startedAt: Date.UTC(2025, 0, 2),
  endedAt: Date.UTC(2025, 0, 2) + 1000,
  summary: {
    job: 'items',
    runId,
    status: 'failed',
    ids: 0,
    ranges: { completed: 0, retried: 0, dead: 0 },
    workers: { started: 0, restarted: 0 },
    durationMs: 1000,
    heldMs: 0,
    host: { ids: 0, ranges: 0 },
  },
  deadLetters: 0,
  error,
});

/** An error a store may hold: terminal escapes, line breaks and a connection string with its password. */
const STORED_ERROR = `the handler threw:\x1b[2J\x1b[31m red\nredis://:${PW}@10.0.0.9:6379 refused\u009b2J`;

/** The CLI against a password-protected Redis of the test's own, as a user gives the password. */
describe('secrets in the CLI (e2e)', () => {
  const server = new OwnRedis(PW);
  const local = `127.0.0.1:${server.port}`;
  beforeAll(async () => {
    await server.start();
    const redis = new Redis(server.url, { password: PW });
    const store = new RedisStore(redis, PREFIX);
    await store.job('items').start({ runId: 'run-1' });
    await store
      .job('items')
      .endRun({ runId: 'run-1', state: 'failed', error: STORED_ERROR });
    await store
      .job('items')
      .recordRun({ record: record('run-1', STORED_ERROR), keep: 10 });
    await redis.quit();
  });
  afterAll(() => server.stop());

  it.each([
    ['a password', `redis://:${PW}@${local}`],
    ['a user and a password', `redis://default:${PW}@${local}`],
    ['?password=', `redis://${local}/0?password=${PW}`],
    ['no scheme, a user and a password', `default:${PW}@${local}`],
    ['no scheme, a password', `:${PW}@${local}`],
  ])(
    '%s: status and history reach the job and print no password',
    async (_, url) => {
      const status = await runCli([
        'status',
        'items',
        '--redis',
        url,
        '--prefix',
        PREFIX,
      ]);
      expect(status).toMatchObject({ code: 0 });
      expect(status.out).not.toContain(PW);
      // The stored error on the status line, on one line, with no terminal codes.
      expect(status.out.split('\n')[0]).toBe(
        'job items: failed (run run-1): the handler threw: [2J [31m red redis://***@10.0.0.9:6379 refused 2J',
      );
      const history = await runCli([
        'history',
        'items',
        '--redis',
        url,
        '--prefix',
        PREFIX,
      ]);
      expect(history).toMatchObject({ code: 0 });
      expect(history.out).toContain('redis://***@10.0.0.9:6379');
      expect(history.out).not.toContain(PW);
      const json = await runCli([
        'history',
        'items',
        '--json',
        '--redis',
        url,
        '--prefix',
        PREFIX,
      ]);
      expect(json.out).not.toContain(PW);
      const unknown = await runCli([
        'status',
        'nope',
        '--redis',
        url,
        '--prefix',
        PREFIX,
      ]);
      expect(unknown.code).toBe(2);
      expect(unknown.out).toMatch(/^No job "nope" in Redis at \S*\*\*\*/);
      expect(unknown.out).not.toContain(PW);
    },
  );

  it.each([
    ['a wrong password', `redis://:${PW}x@${local}`, /WRONGPASS|NOAUTH/],
    [
      'a user and a wrong password',
      `redis://nobody:${PW}@${local}`,
      /WRONGPASS/,
    ],
    [
      '?password= on a closed port',
      `redis://127.0.0.1:1/0?password=${PW}`,
      /ECONNREFUSED/,
    ],
    [
      'TLS (rediss://) to a closed port',
      `rediss://:${PW}@127.0.0.1:1`,
      /ECONNREFUSED/,
    ],
    [
      'no scheme, on a closed port',
      `default:${PW}@127.0.0.1:1`,
      /ECONNREFUSED/,
    ],
  ])(
    '%s: the error names the address, never the password',
    async (_, url, cause) => {
      const down = await runCli([
        'status',
        'items',
        '--redis',
        url,
        '--prefix',
        PREFIX,
      ]);
      expect(down.code).toBe(2);
      expect(down.out).toMatch(/^Cannot reach Redis at \S*\*\*\*\S*: /);
      expect(down.out).toMatch(cause);
      expect(down.out).not.toContain(PW);
    },
  );
});

/** A password-protected Redis Cluster, reached from the CLI with --cluster and the credentials given. */
describe('the CLI and a password-protected Redis Cluster (e2e)', () => {
  const cluster = new OwnRedisCluster(PW);
  beforeAll(async () => {
    await cluster.start();
    const client = new Redis.Cluster(
      cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      { redisOptions: { password: PW } },
    );
    const store = new RedisStore(client, PREFIX);
    await store.job('items').start({ runId: 'run-c' });
    await store
      .job('items')
      .endRun({ runId: 'run-c', state: 'failed', error: STORED_ERROR });
    await client.quit();
  });
  afterAll(() => cluster.stop());

  it.each([
    [
      'a password on the first node',
      () => `:${PW}@${nodes()[0]},${nodes().slice(1).join(',')}`,
    ],
    [
      'URLs with a user and a password',
      () =>
        nodes()
          .map((n) => `redis://default:${PW}@${n}`)
          .join(','),
    ],
    [
      '?password= on one node',
      () => `${nodes()[0]}?password=${PW},${nodes().slice(1).join(',')}`,
    ],
  ])('%s: status reaches the job and prints no password', async (_, list) => {
    const status = await runCli([
      'status',
      'items',
      '--cluster',
      '--redis',
      list(),
      '--prefix',
      PREFIX,
    ]);
    expect(status.out.split('\n')[0]).toBe(
      'job items: failed (run run-c): the handler threw: [2J [31m red redis://***@10.0.0.9:6379 refused 2J',
    );
    expect(status.code).toBe(0);
    expect(status.out).not.toContain(PW);
  });

  it('without the password, or with two different ones: a clear refusal, no password printed', async () => {
    const bare = await runCli([
      'status',
      'items',
      '--cluster',
      '--redis',
      cluster.nodes,
      '--prefix',
      PREFIX,
    ]);
    expect(bare.code).toBe(2);
    expect(bare.out).toMatch(
      /NOAUTH|Authentication required|WRONGPASS|Cannot reach/,
    );
    const two = await runCli([
      'status',
      'items',
      '--cluster',
      '--redis',
      `:${PW}@${nodes()[0]},:${PW}x@${nodes()[1]}`,
      '--prefix',
      PREFIX,
    ]);
    expect(two.code).toBe(2);
    expect(two.out).toMatch(
      /^The addresses given name different values of password/,
    );
    expect(bare.out + two.out).not.toContain(PW);
  });

  function nodes(): string[] {
    return cluster.ports.map((p) => `127.0.0.1:${p}`);
  }
});

/** Redis behind a password-protected Sentinel, its master protected by another password. */
describe('the CLI through a password-protected Sentinel (e2e)', () => {
  const SENTINEL_PW = 'sentinel-s3cret';
  const sentinel = new OwnRedisSentinel(PW, SENTINEL_PW);
  const at = () => `127.0.0.1:${sentinel.sentinel}`;
  beforeAll(async () => {
    await sentinel.start();
    const redis = new Redis({
      port: sentinel.master,
      password: PW,
    });
    const store = new RedisStore(redis, PREFIX);
    await store.job('items').start({ runId: 'run-s' });
    // A host takes part for the whole test: the run is active, so status says running.
    await store
      .job('items')
      .heartbeat({ owner: 'host-s', tokens: [], leaseMs: 3_600_000 });
    await redis.quit();
  });
  afterAll(() => sentinel.stop());

  const status = (list: string) =>
    runCli([
      'status',
      'items',
      '--sentinel',
      list,
      '--name',
      sentinel.name,
      '--prefix',
      PREFIX,
    ]);

  it.each([
    [
      'user:password@ for the sentinel',
      () => `default:${SENTINEL_PW}@${at()}?password=${PW}`,
    ],
    [
      'every credential in the query',
      () => `${at()}?sentinelPassword=${SENTINEL_PW}&password=${PW}`,
    ],
  ])(
    '%s, ?password= for the master: status reaches the job, printing no password',
    async (_, list) => {
      const shown = await status(list());
      expect(shown.out).toMatch(/^job items: running \(run run-s\)/);
      expect(shown.code).toBe(0);
      expect(shown.out).not.toMatch(/s3cret/);
    },
  );

  it("without the master's password: a clear refusal, no password printed", async () => {
    const refused = await status(`:${SENTINEL_PW}@${at()}`);
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(
      /^Cannot reach Redis at master "pw-master" of sentinels \*\*\*@127\.0\.0\.1:\d+: /,
    );
    expect(refused.out).not.toMatch(/s3cret/);
  });
});

/** The app's own view: the error of a store it cannot reach and its log lines, for each way to write the URL. */
describe('secrets in the app (e2e)', () => {
  it.each([
    [
      'a user and a password',
      `redis://user:${PW}@127.0.0.1:1`,
      'redis://***@127.0.0.1:1',
    ],
    [
      '?password=',
      `redis://127.0.0.1:1/0?password=${PW}`,
      'redis://127.0.0.1:1/0?***',
    ],
    [
      'TLS (rediss://)',
      `rediss://:${PW}@127.0.0.1:1?tls=1`,
      'rediss://***@127.0.0.1:1?***',
    ],
  ])(
    '%s: StoreUnavailableError and the logs name the address without the password',
    async (_, url, shown) => {
      const result = await startFixture({
        DATABASE_URL,
        FIXTURE_TABLE: 'unused',
        FIXTURE_STORAGE_URL: url,
        FIXTURE_STORE_TIMEOUT_MS: 1500,
        FIXTURE_WORKERS: 1,
      }).exited;
      expect(result.unavailable?.message).toContain(
        `the coordination store (Redis at ${shown}) did not answer within 1500 ms`,
      );
      // The connection's warning names it the same way.
      expect(result.output).toContain(`Redis at ${shown}: `);
      expect(result.output).not.toContain(PW);
    },
  );

  it('a URL without a scheme: refused at bootstrap, the error showing no password', async () => {
    const result = await startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: 'unused',
      FIXTURE_STORAGE_URL: `user:${PW}@127.0.0.1:6379`,
      FIXTURE_WORKERS: 1,
    }).exited;
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('option "storage"');
    expect(result.output).toContain('***@127.0.0.1:6379');
    expect(result.output).not.toContain(PW);
  });

  it("a Cluster client of the app's, its nodes given as URLs: the store says where without the password", () => {
    const client = new Redis.Cluster(
      [`redis://:${PW}@127.0.0.1:7001`, `redis://default:${PW}@127.0.0.1:7002`],
      { lazyConnect: true },
    );
    const store = new RedisStore(client, PREFIX);
    expect(store.where).toBe(
      'Redis Cluster at redis://***@127.0.0.1:7001,redis://***@127.0.0.1:7002',
    );
    client.disconnect();
  });
});
