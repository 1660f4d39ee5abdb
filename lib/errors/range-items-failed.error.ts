import type { ID } from '../interfaces/range.interface';

/**
 * Thrown by a `@RangeHandler` when only some ids of its range failed: the
 * other ids count as done, and only these are retried, as a range of their
 * own (with the usual attempts, backoff and dead letter). Name ids of the
 * range only, as the handler got them.
 *
 * ```ts
 * if (failed.length) throw new RangeItemsFailedError(failed, firstError)
 * ```
 */
export class RangeItemsFailedError extends Error {
  override readonly name = 'RangeItemsFailedError';

  constructor(
    readonly ids: readonly (ID | bigint)[],
    cause?: unknown,
  ) {
    super(
      `${ids.length} ${ids.length === 1 ? 'id' : 'ids'} of the range failed${
        cause === undefined
          ? ''
          : `: ${cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : JSON.stringify(cause)}`
      }`,
      cause === undefined ? undefined : { cause },
    );
  }
}
