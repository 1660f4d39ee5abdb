import { parseArgs } from 'node:util';
import { redactSecrets } from '../redact-secrets';
import { RateSampler } from '../run/rate-sampler';
import { RedisStore } from '../store/redis.store';
import { renderDead, renderHistory } from './history-view';
import { renderStatus, statusJson } from './status-view';

const USAGE = `Usage: nestjs-parallel-worker <command> <job> [--redis <url>] [--prefix <storageKey>]

Commands:
  status [--watch]   state, progress, rate, ETA, ranges and leases per host (--watch: live, Ctrl+C to leave;
                     --json: one JSON object per view, for scripts)
  history            ended runs, newest first: status, start, duration, ids, ranges, who started them, params
                     (--limit <n>: how many, default 20; --json: the store's records as one JSON array)
  dead               dead-lettered ranges, oldest first: run, attempts, ids, when, error
                     (--offset <n> --limit <n>: which, default the first 50; --json: { total, offset, deadLetters })
  pause              no host hands out anything until resume (leases are kept)
  resume             hands out again
  cancel             ends the active run on every host; the cursor stays
  retry-dead         hands the dead-lettered ranges out again
  reset              cursor back to the start (refused while a run is active)

Where the store is:
  --redis <url>              Redis URL; default: $PARALLEL_WORKER_REDIS_URL, then $REDIS_URL
  --cluster                  --redis lists Redis Cluster nodes: [user:password@]host:port[,...] (URLs too); the
                             credentials (or ?username=…&password=…) are the nodes'
  --sentinel <host:port,...> through Sentinel: the sentinels, with --name <master> (the monitored master's name);
                             user:password@ on a sentinel is the sentinels' own (or ?sentinelPassword=…), and
                             ?username=…&password=… the master's, as ioredis names them
Passwords are never printed: a URL's credentials and query show as ***.
  --prefix <storageKey>      default: $PARALLEL_WORKER_PREFIX, then 'parallel-worker' (the module's storageKey default)`;

const COMMANDS = [
  'status',
  'history',
  'dead',
  'pause',
  'resume',
  'cancel',
  'retry-dead',
  'reset',
];

/** Default `--limit` of the commands that list. */
const LIMITS: Record<string, number> = { history: 20, dead: 50 };

/** Thrown for anything the user can fix; printed without a stack. */
export class CliError extends Error {}

interface Io {
  out: (text: string) => void;
  /** Output goes to a terminal (watch redraws in place), not a pipe or a file. */
  tty?: boolean;
  /** Where PARALLEL_WORKER_REDIS_URL, REDIS_URL and PARALLEL_WORKER_PREFIX are read. */
  env?: Record<string, string | undefined>;
  /** Resolves when the user asks to stop watching (SIGINT). */
  interrupted: Promise<void>;
}

/** Runs one CLI command against the store in Redis; resolves with the exit code. */
export async function cli(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        redis: { type: 'string' },
        cluster: { type: 'boolean' },
        sentinel: { type: 'string' },
        name: { type: 'string' },
        prefix: { type: 'string' },
        watch: { type: 'boolean' },
        json: { type: 'boolean' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  // Everything printed is masked: the addresses given and the store's own text (errors, params).
  const write = io.out;
  io = { ...io, out: (text) => write(redactSecrets(text)) };
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const [command, job] = positionals;
  if (!command || !COMMANDS.includes(command))
    throw new CliError(
      `${command ? `Unknown command "${command}".` : 'No command given.'}\n\n${USAGE}`,
    );
  if (!job)
    throw new CliError(
      `Name the job: nestjs-parallel-worker ${command} <job> --redis <url>`,
    );
  if (values.limit !== undefined && !(command in LIMITS))
    throw new CliError(`--limit is for history and dead, not ${command}.`);
  if (values.offset !== undefined && command !== 'dead')
    throw new CliError(`--offset is for dead, not ${command}.`);
  const limit =
    values.limit === undefined
      ? LIMITS[command]
      : whole('--limit', values.limit, 1);
  const offset =
    values.offset === undefined ? 0 : whole('--offset', values.offset, 0);
  const env = io.env ?? {};
  const target = where({
    ...values,
    redis: values.redis ?? env.PARALLEL_WORKER_REDIS_URL ?? env.REDIS_URL,
  });
  const prefix =
    values.prefix ?? env.PARALLEL_WORKER_PREFIX ?? 'parallel-worker';
  const redis = await connect(target);
  try {
    const store = new RedisStore(redis, prefix);
    const state = await store.state(job);
    if (state.state === 'idle' && state.runId === null) {
      const jobs = await store.jobs();
      throw new CliError(
        `No job "${job}" in Redis at ${target.label} under prefix "${prefix}". ${jobs.length ? `Jobs there: ${jobs.join(', ')}.` : "No jobs there at all: check --prefix (the module's storageKey)."}`,
      );
    }
    switch (command) {
      case 'status':
        return await status(
          store,
          job,
          Boolean(values.watch),
          Boolean(values.json),
          io,
        );
      case 'history': {
        const records = store.history ? await store.history(job, limit) : [];
        io.out(
          values.json
            ? JSON.stringify(records)
            : renderHistory(job, records, limit),
        );
        return 0;
      }
      case 'dead': {
        const deadLetters = await store.deadLetters(job, { offset, limit });
        io.out(
          values.json
            ? JSON.stringify({ total: state.dead, offset, deadLetters })
            : renderDead(job, state.dead, offset, deadLetters),
        );
        return 0;
      }
      case 'retry-dead':
        io.out(
          `${await store.retryDead(job)} dead-lettered ranges of "${job}" will be handed out again${state.state === 'running' ? '' : ' by its next run'}.`,
        );
        return 0;
      case 'reset':
        try {
          await store.reset(job);
        } catch (e) {
          throw new CliError(`Cannot reset "${job}": ${(e as Error).message}`);
        }
        io.out(`"${job}" reset: its next run starts from the first row.`);
        return 0;
      default: {
        const action = command as 'pause' | 'resume' | 'cancel';
        const runId = await store.control(job, action);
        if (!runId)
          throw new CliError(
            `"${job}" has no active run to ${action} (it is ${state.state}).`,
          );
        io.out(
          `${action === 'pause' ? 'Paused' : action === 'resume' ? 'Resumed' : 'Cancelled'} run ${runId} of "${job}"; every host follows within a second.`,
        );
        return 0;
      }
    }
  } finally {
    redis.disconnect();
  }
}

async function status(
  store: RedisStore,
  job: string,
  watch: boolean,
  json: boolean,
  io: Io,
): Promise<number> {
  const rates = new RateSampler();
  let stop = false;
  void io.interrupted.then(() => (stop = true));
  do {
    const s = await store.state(job);
    const rate = rates.rate(job, s);
    const owners = await store.leasesByOwner(job);
    if (json) {
      io.out(JSON.stringify(statusJson(job, s, rate, owners)));
      if (watch)
        await Promise.race([
          new Promise((r) => setTimeout(r, 1000)),
          io.interrupted,
        ]);
      continue;
    }
    const view = renderStatus(job, s, rate, owners);
    // In watch mode on a terminal the view is redrawn in place; into a pipe or file, each view follows the last.
    io.out(
      !watch
        ? view
        : io.tty
          ? `\x1b[2J\x1b[H${view}\n(watching; Ctrl+C to leave)`
          : `${view}\n`,
    );
    if (watch)
      await Promise.race([
        new Promise((r) => setTimeout(r, 1000)),
        io.interrupted,
      ]);
  } while (watch && !stop);
  return 0;
}

/** A flag's value as a whole number of at least `min`. */
function whole(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min)
    throw new CliError(
      `${flag} takes a whole number ≥ ${min}, got ${JSON.stringify(value)}.`,
    );
  return n;
}

/** The store's Redis as the flags say: one URL, Cluster nodes, or sentinels and a master name. */
interface Target {
  label: string;
  make(
    Redis: typeof import('ioredis').default,
  ): import('ioredis').default | import('ioredis').Cluster;
}

function where(v: {
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

async function connect(target: Target) {
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
