import { hostname } from 'node:os';
import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error';
import type {
  RedisConnectionOptions,
  ResolvedParallelWorkerOptions,
} from '../interfaces/parallel-worker-options.interface';
import type { ModuleLogger } from '../parallel-worker.logger';
import { redactSecrets } from '../redact-secrets';

/** The ioredis calls the module makes on a client it owns. */
interface OwnedClient {
  status: string;
  on(event: 'error' | 'ready', listener: (e?: Error) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Where a `storage` URL or options point, without credentials. */
export function describeRedis(
  storage: string | RedisConnectionOptions,
): string {
  return redactSecrets(
    typeof storage === 'string'
      ? `Redis at ${storage}`
      : storage.sentinels?.length
        ? `Redis master "${storage.name}" through sentinels ${storage.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`
        : `Redis at ${storage.path ?? `${storage.host ?? '127.0.0.1'}:${storage.port ?? 6379}`}`,
  );
}

/**
 * The ioredis client for a `storage` URL or options: the module's own. It
 * connects on first use (a worker that never needs it never connects),
 * fails a command after two reconnect attempts so the caller's deadline
 * decides, reports connection errors once per outage in the log instead of
 * as unhandled `error` events, and is closed by `close()`.
 */
export function ownRedis(
  storage: string | RedisConnectionOptions,
  options: ResolvedParallelWorkerOptions,
  logger: ModuleLogger,
) {
  let Redis: new (...args: unknown[]) => OwnedClient;
  try {
    // Loaded on demand: apps without Redis never load ioredis or the Redis store.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Redis = require('ioredis');
  } catch {
    throw new ParallelWorkerConfigError(
      'ParallelWorkerModule: option "storage" is a Redis URL or Redis options, which needs ioredis: npm install ioredis',
    );
  }
  const where = describeRedis(storage);
  const settings = {
    connectionName: `${options.storageKey}:${hostname()}:${process.pid}`,
    lazyConnect: true,
    connectTimeout: options.storeConnectTimeoutMs,
    maxRetriesPerRequest: 2,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  };
  const client =
    typeof storage === 'string'
      ? new Redis(storage, settings)
      : new Redis({ ...settings, ...storage });
  let down = false;
  let lastError: string | undefined;
  client.on('error', (e) => {
    lastError = e?.message;
    if (down) return;
    down = true;
    logger.warn(`${where}: ${e?.message}; reconnecting.`);
  });
  client.on('ready', () => {
    if (down) logger.info(`${where}: connected again.`);
    down = false;
    lastError = undefined;
  });
  return {
    client,
    where,
    /** The connection's last error while it is down (ECONNREFUSED, ENOTFOUND, auth): says more than a command's. */
    problem: () => lastError,
    /** Closes the client: QUIT when connected (at most a second), else at once. */
    async close(): Promise<void> {
      if (client.status === 'ready') {
        await Promise.race([
          client.quit().catch(() => undefined),
          new Promise((r) => setTimeout(r, 1000).unref()),
        ]);
      }
      client.disconnect();
    },
  };
}
