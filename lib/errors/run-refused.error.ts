/**
 * An operation the job's run does not allow now, whatever the store; nothing
 * was started or changed. `run()` rejects with it when the run may not start
 * or be joined: `from` while the run is active, the job declared by another
 * app in the same store, a run already going on this host when `from` is
 * given, a stop already signalled in this process, or part of the job's
 * state lost from the store (until `run(job, { from })` or `reset`). `reset()` rejects with
 * it while the run is active, `pause()`/`resume()`/`cancel()` when there is no
 * active run. `status()`, `pause()`, `resume()`, `cancel()`, `reset()`,
 * `retryDead()`, `history()` and `deadLetters()` reject with it on a job the
 * store keeps for another app (another loader and handler).
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
