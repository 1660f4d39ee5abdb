import { availableParallelism } from 'node:os';
import { ParallelWorkerConfigError } from './errors/parallel-worker-config.error';
import type {
  ParallelWorkerLogLevel,
  ParallelWorkerOptions,
  ResolvedParallelWorkerOptions,
} from './interfaces/parallel-worker-options.interface';
import { DEFAULT_FENCE_TABLE, fenceTableProblem } from './fence/fence-ddl';
import { show } from './parallel-worker.messages';
import { redactSecrets } from './redact-secrets';

/** What a range's handler should take when neither rangeSize nor targetRangeMs is set. */
const DEFAULT_TARGET_RANGE_MS = 500;

const LEVELS: ParallelWorkerLogLevel[] = [
  'trace',
  'verbose',
  'debug',
  'info',
  'log',
  'warn',
  'error',
  'fatal',
];

const fail = (option: string, value: unknown, expected: string): never => {
  throw new ParallelWorkerConfigError(
    `ParallelWorkerModule: option "${option}" must be ${expected}, got ${show(value)}. Fix it in ParallelWorkerModule.forRoot() / forRootAsync().`,
  );
};

function int(
  options: ParallelWorkerOptions,
  key: keyof ParallelWorkerOptions,
  fallback: number,
  min: number,
): number {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    fail(key, value, `a whole number >= ${min}`);
  return value as number;
}

/** Fills in defaults (the seed's where the seed had the option) and refuses bad values at bootstrap. */
export function resolveOptions(
  options: ParallelWorkerOptions = {},
): ResolvedParallelWorkerOptions {
  if (typeof options !== 'object' || options === null)
    fail('options', options, 'an object');
  const workers = int(options, 'workers', availableParallelism(), 0);
  const concurrency = int(options, 'concurrency', 1, 1);
  const leaseMs = int(options, 'leaseMs', 10_000, 100);
  const heartbeatMs = int(
    options,
    'heartbeatMs',
    Math.max(10, Math.floor(leaseMs / 3)),
    10,
  );
  if (heartbeatMs >= leaseMs)
    fail('heartbeatMs', heartbeatMs, `less than leaseMs (${leaseMs})`);
  const retryBackoffMs = int(options, 'retryBackoffMs', 1000, 0);
  const minRangeSize = int(options, 'minRangeSize', 10, 1);
  const maxRangeSize = int(
    options,
    'maxRangeSize',
    Math.max(10_000, minRangeSize),
    minRangeSize,
  );
  const logging = options.logging ?? {};
  if (typeof logging !== 'object')
    fail('logging', logging, 'an object { enabled?, level? }');
  if (logging.enabled !== undefined && typeof logging.enabled !== 'boolean')
    fail('logging.enabled', logging.enabled, 'a boolean');
  if (logging.level !== undefined && !LEVELS.includes(logging.level))
    fail('logging.level', logging.level, `one of ${LEVELS.join(', ')}`);
  if (
    options.restartWorkerOnExit !== undefined &&
    typeof options.restartWorkerOnExit !== 'boolean'
  ) {
    fail('restartWorkerOnExit', options.restartWorkerOnExit, 'a boolean');
  }
  if (
    options.storageKey !== undefined &&
    (typeof options.storageKey !== 'string' ||
      !/^[^{}\s]+$/.test(options.storageKey))
  ) {
    fail(
      'storageKey',
      options.storageKey,
      'a non-empty string without spaces or braces',
    );
  }
  if (
    options.workerExec !== undefined &&
    (typeof options.workerExec !== 'string' || options.workerExec === '')
  ) {
    fail('workerExec', options.workerExec, 'the path of a script');
  }
  if (
    options.lockOptions !== undefined &&
    (typeof options.lockOptions !== 'object' || options.lockOptions === null)
  ) {
    fail('lockOptions', options.lockOptions, 'an async-lock options object');
  }
  const storage = options.storage;
  if (
    storage !== undefined &&
    (typeof storage !== 'object' || storage === null) &&
    !(
      typeof storage === 'string' &&
      (storage === 'memory' || /^(rediss?:\/\/.|sqlite:)/.test(storage))
    )
  ) {
    fail(
      'storage',
      typeof storage === 'string' ? redactSecrets(storage) : storage,
      "'sqlite:<path>', 'memory', a Redis URL ('redis://host:port'), ioredis options, an ioredis client, a CoordinationStore or an object with get and set (omit it for the SQLite file parallel-worker.db in the working directory)",
    );
  }
  const idOrder = options.idOrder ?? 'numeric';
  if (
    typeof idOrder !== 'function' &&
    !['numeric', 'text', 'binary'].includes(idOrder)
  ) {
    fail(
      'idOrder',
      idOrder,
      "'numeric', 'text', 'binary' or a comparator (a, b) => number",
    );
  }
  const maxDeadRatio =
    options.maxDeadRatio === undefined ? 0.5 : options.maxDeadRatio;
  if (
    typeof maxDeadRatio !== 'number' ||
    !(maxDeadRatio >= 0 && maxDeadRatio <= 1)
  )
    fail(
      'maxDeadRatio',
      maxDeadRatio,
      'a number from 0 to 1 (the share of ended ranges that may go to the dead letters; 1: never fail for them)',
    );
  if (options.throttle !== undefined && typeof options.throttle !== 'function')
    fail(
      'throttle',
      options.throttle,
      'a function ({ job, runId }) => boolean | ms',
    );
  const fence = options.fence ?? {};
  if (typeof fence !== 'object' || fence === null)
    fail('fence', fence, 'an object { table?: string }');
  const table = fence.table ?? DEFAULT_FENCE_TABLE;
  const tableProblem = fenceTableProblem(table);
  if (tableProblem)
    fail('fence.table', table, tableProblem.replace(/, got .*$/, ''));
  const health = options.health ?? [];
  if (!Array.isArray(health) || health.some((h) => typeof h !== 'function'))
    fail(
      'health',
      health,
      'an array of health indicators (postgresHealth(…), mysqlHealth(…) or functions (ctx) => Promise<{ state }>)',
    );
  if (
    options.holdOnUnknown !== undefined &&
    typeof options.holdOnUnknown !== 'boolean'
  )
    fail('holdOnUnknown', options.holdOnUnknown, 'true or false');
  return {
    storage,
    fence: { table },
    health,
    healthIntervalMs: int(options, 'healthIntervalMs', 5000, 10),
    holdOnUnknown: options.holdOnUnknown ?? false,
    throttle: options.throttle,
    healthTimeoutMs: int(options, 'healthTimeoutMs', 2000, 1),
    maxRangesPerSecond: int(options, 'maxRangesPerSecond', 0, 0),
    workers,
    restartWorkerOnExit: options.restartWorkerOnExit ?? true,
    maxAllowedWorkerRestartsCount: int(
      options,
      'maxAllowedWorkerRestartsCount',
      workers * 5,
      0,
    ),
    logging: {
      enabled: logging.enabled ?? true,
      level: logging.level ?? 'info',
    },
    lockOptions: options.lockOptions ?? {},
    storageKey: options.storageKey ?? 'parallel-worker',
    storeConnectTimeoutMs: int(options, 'storeConnectTimeoutMs', 10_000, 100),
    concurrency,
    prefetch: int(options, 'prefetch', Math.max(1, workers * concurrency), 0),
    rangeSize: int(options, 'rangeSize', 1000, 1),
    // Left to the module, the range size adapts (as pt-online-schema-change's chunk time); a rangeSize given alone stays fixed.
    targetRangeMs: int(
      options,
      'targetRangeMs',
      options.rangeSize === undefined ? DEFAULT_TARGET_RANGE_MS : 0,
      0,
    ),
    minRangeSize,
    maxRangeSize,
    leaseMs,
    heartbeatMs,
    maxAttempts: int(options, 'maxAttempts', 3, 1),
    maxDeadRatio,
    retryBackoffMs,
    maxRetryBackoffMs: int(
      options,
      'maxRetryBackoffMs',
      Math.max(30_000, retryBackoffMs),
      retryBackoffMs,
    ),
    shutdownTimeoutMs: int(options, 'shutdownTimeoutMs', 10_000, 0),
    rangeTimeoutMs: int(options, 'rangeTimeoutMs', 300_000, 0),
    loaderTimeoutMs: int(options, 'loaderTimeoutMs', 60_000, 0),
    workerIdleMs: int(options, 'workerIdleMs', 120_000, 0),
    historyLimit: int(options, 'historyLimit', 100, 0),
    loaderConcurrency: int(options, 'loaderConcurrency', 8, 1),
    workerExec: options.workerExec,
    idOrder,
  };
}
