/**
 * `run()` rejects with it when the run may not start or be joined, whatever
 * the store: `from` while the run is active, the job declared by another app
 * in the same store, a run already going on this host when `from` is given,
 * or a stop already signalled in this process. Nothing was started or changed.
 */
export class RunRefusedError extends Error {
  override readonly name = 'RunRefusedError';

  constructor(
    readonly job: string,
    message: string,
  ) {
    super(message);
  }
}
