import { availableParallelism } from 'node:os';
import { ParallelWorkerConfigError } from '../../lib';
import { resolveOptions } from '../../lib/parallel-worker.options';

describe('options', () => {
  it('keeps the seed defaults', () => {
    const o = resolveOptions({});
    expect(o).toMatchObject({
      workers: availableParallelism(),
      restartWorkerOnExit: true,
      maxAllowedWorkerRestartsCount: availableParallelism() * 5,
      logging: { enabled: true, level: 'info' },
      lockOptions: {},
      storageKey: 'parallel-worker',
      concurrency: 1,
      rangeSize: 1000,
      leaseMs: 10_000,
      maxAttempts: 3,
      maxDeadRatio: 0.5,
      shutdownTimeoutMs: 10_000,
      workerIdleMs: 120_000,
      healthTimeoutMs: 2000,
      loaderTimeoutMs: 60_000,
    });
    expect(resolveOptions({ workers: 3 }).maxAllowedWorkerRestartsCount).toBe(
      15,
    );
  });

  it('adapts the range size by default, and keeps a rangeSize given alone fixed', () => {
    expect(resolveOptions({})).toMatchObject({
      rangeSize: 1000,
      targetRangeMs: 500,
      minRangeSize: 10,
      maxRangeSize: 10_000,
    });
    expect(resolveOptions({ rangeSize: 250 })).toMatchObject({
      rangeSize: 250,
      targetRangeMs: 0,
    });
    expect(
      resolveOptions({ rangeSize: 250, targetRangeMs: 100 }),
    ).toMatchObject({ rangeSize: 250, targetRangeMs: 100 });
    expect(resolveOptions({ targetRangeMs: 0 })).toMatchObject({
      rangeSize: 1000,
      targetRangeMs: 0,
    });
  });

  it.each([
    [{ workers: -1 }, 'option "workers" must be a whole number >= 0, got -1'],
    [{ workers: 1.5 }, 'option "workers" must be a whole number >= 0, got 1.5'],
    [
      { concurrency: 0 },
      'option "concurrency" must be a whole number >= 1, got 0',
    ],
    [
      { maxAttempts: '3' },
      `option "maxAttempts" must be a whole number >= 1, got '3'`,
    ],
    [
      { leaseMs: 1000, heartbeatMs: 1000 },
      'option "heartbeatMs" must be less than leaseMs (1000), got 1000',
    ],
    [{ logging: { level: 'loud' } }, 'option "logging.level" must be one of'],
    [
      { storageKey: 'a {b}' },
      'option "storageKey" must be a non-empty string without spaces or braces',
    ],
    [
      { healthTimeoutMs: 0 },
      'option "healthTimeoutMs" must be a whole number >= 1, got 0',
    ],
    [
      { workerIdleMs: -1 },
      'option "workerIdleMs" must be a whole number >= 0, got -1',
    ],
    ...[-0.1, 1.5, '0.5', Number.NaN, null].map((value) => [
      { maxDeadRatio: value },
      `option "maxDeadRatio" must be a number from 0 to 1 (the share of ended ranges that may go to the dead letters; 1: never fail for them), got ${value === '0.5' ? "'0.5'" : String(value)}`,
    ]),
    [
      { restartWorkerOnExit: 'yes' },
      'option "restartWorkerOnExit" must be a boolean',
    ],
    [
      { idOrder: 'collation' },
      `option "idOrder" must be 'numeric', 'text', 'binary' or a comparator (a, b) => number, got 'collation'`,
    ],
  ] as [Record<string, unknown>, string][])(
    'refuses %p',
    (options, message) => {
      expect(() => resolveOptions(options as never)).toThrow(
        ParallelWorkerConfigError,
      );
      expect(() => resolveOptions(options as never)).toThrow(message);
    },
  );
});
