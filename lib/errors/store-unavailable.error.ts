/**
 * `run()` rejects with it when the coordination store did not answer its
 * first call within `storeConnectTimeoutMs` (a Redis that is down or
 * unreachable): nothing was started or changed.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';

  constructor(
    readonly job: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
