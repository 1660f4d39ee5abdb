import type { LeaseKeeper } from './lease-keeper';
import type { Finished, RangeRecorder } from './range-recorder';
import type { RunDeps } from './run-deps';

/**
 * Writes what workers answered to the store: completions of one turn of the
 * event loop in one call, failures and releases one by one. A lease stays
 * the keeper's until its write landed (or failed for good: the store stayed
 * unreachable, and the lease is left to expire and go out again). The end of
 * a run waits here for every write.
 */
export class ResultWriter {
  private completing: Finished[] = [];
  /** Tokens whose result is being written (they are not given back meanwhile). */
  private readonly recording = new Set<number>();
  private pending = 0;
  private waker?: () => void;

  constructor(
    private readonly d: RunDeps,
    private readonly recorder: RangeRecorder,
    private readonly keeper: LeaseKeeper,
    /** A write landed: there may be room for more work. */
    private readonly landed: () => void,
  ) {}

  /** A store write for `tokens`; once it landed they are no longer this host's. */
  record(tokens: number[], write: Promise<void>): void {
    for (const token of tokens) this.recording.add(token);
    this.pending++;
    void write
      .catch((e) =>
        this.d.logger.error(
          `Job "${this.d.job.name}": ${(e as Error).message}; the lease is left to expire and the range goes out again.`,
        ),
      )
      .finally(() => {
        this.keeper.forget(tokens);
        for (const token of tokens) this.recording.delete(token);
        this.pending--;
        this.wake();
        this.landed();
      });
  }

  /** A range its handler finished: recorded with the others of this turn of the event loop, in one store call. */
  completed(finished: Finished): void {
    this.recording.add(finished.lease.token);
    if (this.completing.push(finished) > 1) return;
    setImmediate(() => {
      const done = this.completing.splice(0);
      this.record(
        done.map((c) => c.lease.token),
        this.recorder.complete(done),
      );
    });
  }

  /** True while the result of `token` is on its way to the store. */
  writing(token: number): boolean {
    return this.recording.has(token);
  }

  /** Something `settle()` waits for may have happened. */
  wake(): void {
    this.waker?.();
  }

  /** Waits until `idle()` says nothing is in flight and every write landed, or `timeoutMs`. */
  async settle(timeoutMs: number, idle: () => boolean): Promise<void> {
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), this.wake()), timeoutMs);
    while (
      (!idle() || this.pending > 0 || this.completing.length > 0) &&
      !timedOut
    ) {
      await new Promise<void>((resolve) => (this.waker = resolve));
    }
    clearTimeout(timer);
    this.waker = undefined;
  }
}
