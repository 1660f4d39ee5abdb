import type { HealthIndicator } from './health-indicator.interface';
import type AsyncLock from 'async-lock';
import type {
  CoordinationStore,
  KeyValueStorage,
} from '../store/coordination-store.interface';
import type { ID } from './range.interface';
import type { ThrottleFn } from './throttle.interface';

/** Log levels as the seed names them (pino's), plus Nest's own names. */
export type ParallelWorkerLogLevel =
  'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'verbose' | 'log';

/** Anything that quacks like an ioredis `Redis` or `Cluster` client. */
export interface RedisLikeClient {
  defineCommand(
    name: string,
    definition: { numberOfKeys?: number; lua: string },
  ): void;
  evalsha(...args: unknown[]): Promise<unknown>;
  status: string;
}

/**
 * ioredis connection options (`new Redis(options)`), for a client the module
 * creates, owns and closes: a host and port, a socket path, or sentinels and
 * a master name. Typed loosely so the app needs ioredis only when it uses it.
 */
export interface RedisConnectionOptions {
  host?: string;
  port?: number;
  path?: string;
  username?: string;
  password?: string;
  db?: number;
  tls?: Record<string, unknown>;
  sentinels?: { host: string; port: number }[];
  name?: string;
  [option: string]: unknown;
}

/**
 * How a job's ids are ordered (the order the loader returns them in):
 * `'numeric'` numbers and integer strings numerically, other strings by
 * UTF-16 code unit, never the two kinds mixed; `'text'` string ids by code
 * unit (a varchar key in a byte-wise collation); `'binary'` string ids by
 * Unicode code point (UTF-8 byte order); or a comparator.
 */
export type IdOrderOption =
  'numeric' | 'text' | 'binary' | ((a: ID, b: ID) => number);

/** Options of `ParallelWorkerModule.forRoot()`; every one has a default. */
export interface ParallelWorkerOptions {
  /**
   * Where coordination state lives. Default: an embedded SQLite file,
   * `parallel-worker.db` in the working directory, that every process of the
   * host shares (runs resume after any crash or restart; keep it out of
   * version control). `'sqlite:<path>'` names another file. `'memory'`: state
   * in the process, gone with it (tests). For many hosts, a Redis URL
   * (`'redis://…'`, `'rediss://…'`) or ioredis connection options: the module
   * creates that client, names it, and closes it on shutdown. Or an ioredis
   * `Redis`/`Cluster` client of the app's (the module never closes it), any
   * `CoordinationStore`, or a seed-style `{ get, set }` (one host).
   */
  storage?:
    | string
    | RedisConnectionOptions
    | RedisLikeClient
    | CoordinationStore
    | KeyValueStorage;
  /**
   * How long `run()` waits for the store to answer its first call before it
   * rejects with a `StoreUnavailableError` (a Redis that is down or
   * unreachable). Also the connect timeout of a client the module creates. Default `10000`.
   */
  storeConnectTimeoutMs?: number;
  /** Worker processes per host; `0` runs handlers inline in the primary. Default `os.availableParallelism()`. */
  workers?: number;
  /** Fork a replacement when a worker dies. Default `true`. */
  restartWorkerOnExit?: boolean;
  /** Restarts per run before the run fails. Default `workers * 5`. */
  maxAllowedWorkerRestartsCount?: number;
  /** Default `{ enabled: true, level: 'info' }`. */
  logging?: { enabled?: boolean; level?: ParallelWorkerLogLevel };
  /** async-lock options for the per-host loader lock. Default `{}`. */
  lockOptions?: AsyncLock.AsyncLockOptions;
  /** Key prefix in the store. Default `'parallel-worker'`. */
  storageKey?: string;
  /** Ranges one worker handles at once (for I/O-bound handlers). Default `1`. */
  concurrency?: number;
  /** Ranges loaded ahead of the workers, per host. Default `workers * concurrency` (at least 1). */
  prefetch?: number;
  /** Range size suggested to the loader as `ctx.limit` (the first one when `targetRangeMs` is set). Default `1000`. */
  rangeSize?: number;
  /**
   * Adapt `ctx.limit` so a range's handler takes about this long; `0`: keep `rangeSize`.
   * Default `500`, or `0` when `rangeSize` is set (a size you choose stays fixed unless you also set this).
   */
  targetRangeMs?: number;
  /** Lower bound of the adaptive range size. Default `10`. */
  minRangeSize?: number;
  /** Upper bound of the adaptive range size. Default `10000`. */
  maxRangeSize?: number;
  /** How long a lease lives without a heartbeat before another host may take it over. Default `10000`. */
  leaseMs?: number;
  /** How often a host renews its leases. Default `leaseMs / 3`. */
  heartbeatMs?: number;
  /** Hand-outs of a range before it goes to the dead letters. Default `3`. */
  maxAttempts?: number;
  /**
   * Once at least 20 ranges of a run have ended (completed or dead-lettered,
   * all hosts together), a run where more than this share of them went to the
   * dead letters fails at once, on every host, with a `RunFailedError` naming
   * the last handler error, instead of dead-lettering the whole table. Judged
   * with the store's counts each time a range goes to the dead letters, and
   * when the run ends. A number from `0` to `1`; `1` never fails for dead
   * letters. Default `0.5`.
   */
  maxDeadRatio?: number;
  /** Delay before the first retry of a failed range; doubles per attempt, with jitter. Default `1000`. */
  retryBackoffMs?: number;
  /** Upper bound of the retry delay. Default `30000`. */
  maxRetryBackoffMs?: number;
  /** How long a graceful stop waits for in-flight ranges before releasing them. Default `10000`. */
  shutdownTimeoutMs?: number;
  /** A handler running longer has its signal aborted and its range failed (retried); `0` never. Default `300000`. */
  rangeTimeoutMs?: number;
  /**
   * A loader call taking longer counts as a failed call (retried); `0` never.
   * Also the time `@RangePartitions` (the run fails: it cannot start without
   * its plan), `@RangeTotal` (the run goes on without a total) and a
   * `@RangeLoader(job, { params })` check (the run is refused) are given to
   * answer. Default `60000`.
   */
  loaderTimeoutMs?: number;
  /**
   * One more health indicator: `true` holds the run for a second, a number
   * of ms for that long (every host, as a `health` hold), e.g. while
   * replication lags. Asked every second when it is the only indicator,
   * else every `healthIntervalMs`, and again when its hold ends. Default none.
   */
  throttle?: ThrottleFn;
  /**
   * Database-health indicators (`postgresHealth`, `mysqlHealth`, or your own
   * functions): while one says hold, no host hands out a new range (ranges in
   * flight finish); the run goes on by itself when the hold ends. One host at
   * a time asks them, every `healthIntervalMs`. Default none.
   */
  health?: HealthIndicator[];
  /** How often the health indicators are asked, and how long a hold lasts when its indicator names no time. Default `5000`. */
  healthIntervalMs?: number;
  /**
   * How long each health indicator (and the `throttle`) is given to answer;
   * one that does not answer in time, or throws, counts as unknown: a
   * warning, and handing out goes on unless `holdOnUnknown`. Default `2000`.
   */
  healthTimeoutMs?: number;
  /** An indicator that cannot tell (throws, times out) holds the run as a hold would. Default `false`. */
  holdOnUnknown?: boolean;
  /** Ranges handed out per second for the whole job, across hosts when Redis is the store; `0`: no limit. Default `0`. */
  maxRangesPerSecond?: number;
  /**
   * Loader calls at once on this host for a job with partitions
   * (`@RangePartitions`), each in its own partition. Default `8`.
   */
  loaderConcurrency?: number;
  /**
   * How long workers stay up after a run, idle, to serve the next run of any
   * job of the app without starting again; `app.close()` and a stop signal
   * end them at once, and an idle worker never keeps the process alive.
   * `0`: each run forks its workers and ends them. Default `120000`.
   */
  workerIdleMs?: number;
  /**
   * How many ended runs `history()` keeps per job (in the store, so every
   * host sees them). `0` keeps none. Default `100`.
   */
  historyLimit?: number;
  /** Script a worker runs (like `cluster.setupPrimary({ exec })`). Default: the primary's own entry script. */
  workerExec?: string;
  /** The order of the ids the loader returns. Default `'numeric'`. */
  idOrder?: IdOrderOption;
  /**
   * `ctx.fence()`'s table in the handler's database (create it with
   * `fenceDdl()`). Default `{ table: 'parallel_worker_fence' }`.
   */
  fence?: { table?: string };
}

/** Options with every default filled in. */
export interface ResolvedParallelWorkerOptions extends Required<
  Omit<
    ParallelWorkerOptions,
    | 'storage'
    | 'workerExec'
    | 'logging'
    | 'throttle'
    | 'idOrder'
    | 'fence'
    | 'health'
  >
> {
  health: HealthIndicator[];
  fence: { table: string };
  idOrder: IdOrderOption;
  storage?: ParallelWorkerOptions['storage'];
  throttle?: ThrottleFn;
  workerExec?: string;
  logging: { enabled: boolean; level: ParallelWorkerLogLevel };
}
