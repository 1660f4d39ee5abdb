import { redactSecrets } from '../redact-secrets';
import { CliError } from './cli-error';

/** The store's Redis as the flags say: one URL, Cluster nodes, or sentinels and a master name. */
export interface Target {
  label: string;
  make(
    Redis: typeof import('ioredis').default,
  ): import('ioredis').default | import('ioredis').Cluster;
}

export function redisTarget(v: {
  redis?: string;
  cluster?: boolean;
  sentinel?: string;
  name?: string;
}): Target {
  const once = {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    retryStrategy: () => null,
  };
  if (v.sentinel) {
    if (!v.name)
      throw new CliError(
        '--sentinel needs --name <master>: the name the sentinels monitor the master as.',
      );
    const sentinels = v.sentinel
      .split(',')
      .map((s) => address(s.trim(), '--sentinel'));
    // Credentials on a sentinel are the sentinels' own; the master's come as ioredis names them.
    const given = (name: string, from: (a: Address) => string | undefined) =>
      one(sentinels, name, from);
    return {
      label: redactSecrets(`master "${v.name}" of sentinels ${v.sentinel}`),
      make: (Redis) =>
        new Redis({
          ...once,
          sentinels: sentinels.map(({ host, port }) => ({ host, port })),
          name: v.name,
          sentinelRetryStrategy: () => null,
          ...defined({
            sentinelUsername: given(
              'sentinelUsername',
              (a) => a.username ?? a.query.get('sentinelUsername') ?? undefined,
            ),
            sentinelPassword: given(
              'sentinelPassword',
              (a) => a.password ?? a.query.get('sentinelPassword') ?? undefined,
            ),
            username: given(
              'username',
              (a) => a.query.get('username') ?? undefined,
            ),
            password: given(
              'password',
              (a) => a.query.get('password') ?? undefined,
            ),
          }),
        }),
    };
  }
  if (!v.redis)
    throw new CliError(
      'Say where the store is: --redis <url> (or set PARALLEL_WORKER_REDIS_URL or REDIS_URL), e.g. --redis redis://127.0.0.1:6379',
    );
  if (v.cluster) {
    const nodes = v.redis.split(',').map((s) => address(s.trim(), '--redis'));
    const credentials = defined({
      username: one(
        nodes,
        'username',
        (a) => a.username ?? a.query.get('username') ?? undefined,
      ),
      password: one(
        nodes,
        'password',
        (a) => a.password ?? a.query.get('password') ?? undefined,
      ),
    });
    return {
      label: redactSecrets(`Redis Cluster ${v.redis}`),
      make: (Redis) =>
        new Redis.Cluster(
          nodes.map(({ host, port }) => ({ host, port })),
          {
            lazyConnect: true,
            clusterRetryStrategy: () => null,
            redisOptions: {
              connectTimeout: 3000,
              maxRetriesPerRequest: 1,
              ...credentials,
              ...(nodes.some((n) => n.tls) && { tls: {} }),
            },
          },
        ),
    };
  }
  return {
    label: redactSecrets(v.redis),
    make: (Redis) => new Redis(v.redis as string, once),
  };
}

/** One address of a `--redis` or `--sentinel` list, with what was written on it. */
interface Address {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  query: URLSearchParams;
}

/** `[redis[s]://][user:password@]host:port[?query]`, read as ioredis reads a URL. */
function address(s: string, flag: string): Address {
  let url: URL | undefined;
  try {
    url = new URL(/^rediss?:\/\//.test(s) ? s : `redis://${s}`);
  } catch {
    // Said below.
  }
  if (!url?.hostname || !url.port)
    throw new CliError(
      `${flag} takes [user:password@]host:port values, got "${redactSecrets(s)}".`,
    );
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(url.port),
    tls: url.protocol === 'rediss:',
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    query: url.searchParams,
  };
}

/** The one value a list gives for a credential: addresses that name it must agree. */
function one(
  list: Address[],
  name: string,
  from: (a: Address) => string | undefined,
): string | undefined {
  const values = new Set(
    list.map(from).filter((x): x is string => x !== undefined),
  );
  if (values.size > 1)
    throw new CliError(
      `The addresses given name different values of ${name}; one connection has one: write it once, or the same on each.`,
    );
  return [...values][0];
}

/** Only the options that were given (ioredis reads an undefined password as one). */
const defined = (o: Record<string, string | undefined>) =>
  Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined));

export async function connect(target: Target) {
  let Redis: typeof import('ioredis').default;
  try {
    Redis = (await import('ioredis')).default;
  } catch {
    throw new CliError('The CLI needs ioredis: npm install ioredis');
  }
  const redis = target.make(Redis);
  // The socket's own error (ECONNREFUSED, ENOTFOUND, auth) says more than "Connection is closed".
  let cause: Error | undefined;
  redis.on('error', (e) => (cause ??= e));
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new CliError(
      `Cannot reach Redis at ${target.label}: ${(cause ?? (e as Error)).message}`,
    );
  }
  return redis;
}
