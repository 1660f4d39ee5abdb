import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error';
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { CoordinationStore } from './coordination-store.interface';
import { KeyValueStore, type KeyValueStorage } from './key-value.store';
import { MemoryStore } from './memory.store';
import { ownRedis } from './owned-redis';
import { SqlStore } from './sql/sql.store';
import { SqliteDialect } from './sql/sqlite.dialect';
import { SqliteStore } from './sql/sqlite.store';
import { SQLITE_PATH_MISSING } from '../parallel-worker.messages';
import type { ModuleLogger } from '../parallel-worker.logger';

/** Plain ioredis connection options: a plain object naming where Redis is, with no methods. */
const isConnectionOptions = (o: object): boolean =>
  Object.getPrototypeOf(o) === Object.prototype &&
  !Object.values(o).some((v) => typeof v === 'function') &&
  ['host', 'port', 'path', 'sentinels'].some((k) => k in o);

const isFn = (o: any, ...names: string[]) =>
  names.every((n) => typeof o?.[n] === 'function');

/** Picks the store for the `storage` option (duck-typed, so the user's own ioredis copy works). */
export function createStore(
  options: ResolvedParallelWorkerOptions,
  logger: ModuleLogger,
): CoordinationStore {
  const storage = options.storage as any;
  // The default: progress on disk, shared by every process of the host.
  if (storage === undefined)
    return new SqlStore(
      new SqliteDialect(DEFAULT_SQLITE_FILE, undefined, undefined, true),
      options.storageKey,
    );
  if (storage === 'memory') return new MemoryStore();
  if (typeof storage === 'string' && storage.startsWith(SQLITE))
    return sqliteStore(storage.slice(SQLITE.length), options.storageKey);
  if (typeof storage === 'string' || isConnectionOptions(storage)) {
    // A URL or connection options: the module's own client, closed on shutdown.
    const own = ownRedis(storage, options, logger);
    const RedisStore = redisStore();
    return new RedisStore(own.client as never, options.storageKey, own, logger);
  }
  // A CoordinationStore: its jobs are reached through `job(name)`.
  if (isFn(storage, 'job')) return storage as CoordinationStore;
  if (isFn(storage, 'defineCommand', 'evalsha')) {
    const RedisStore = redisStore();
    return new RedisStore(storage, options.storageKey, undefined, logger);
  }
  if (isFn(storage, 'get', 'set'))
    return new KeyValueStore(storage as KeyValueStorage, options.storageKey);
  throw new ParallelWorkerConfigError(
    "ParallelWorkerModule: option \"storage\" must be 'sqlite:<path>', 'memory', a Redis URL, ioredis options, an ioredis Redis or Cluster client, a CoordinationStore, or an object with get(key) and set(key, value). Omit it for the SQLite file parallel-worker.db in the working directory.",
  );
}

const SQLITE = 'sqlite:';

/** The default store's file, in the working directory. */
export const DEFAULT_SQLITE_FILE = 'parallel-worker.db';

/** `sqlite:<path>`: a file of the host's, created on first use. */
function sqliteStore(path: string, storageKey: string): CoordinationStore {
  if (!path) throw new ParallelWorkerConfigError(SQLITE_PATH_MISSING);
  return new SqliteStore(path, { storageKey });
}

/** Loaded on demand: apps without Redis never load ioredis or the Redis store. */
function redisStore(): typeof import('./redis.store').RedisStore {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return (require('./redis.store') as typeof import('./redis.store'))
    .RedisStore;
  /* eslint-enable @typescript-eslint/no-require-imports */
}
