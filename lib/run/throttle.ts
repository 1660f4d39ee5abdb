import type {
  ThrottleContext,
  ThrottleFn,
} from '../interfaces/throttle.interface';
import type { ModuleLogger } from '../parallel-worker.logger';

/** How often the throttle is asked while it lets work through, and how long a `true` pauses. */
const CHECK_MS = 1000;

/**
 * Asks the user's throttle at most once a second (it may be a query) and
 * holds hand-out from the first ask until it answers "go", and again while it
 * says "pause"; after a pause it is asked again before anything goes out.
 * `resume` is called when hand-out may go on.
 */
export class Throttle {
  private go = false;
  private checking = false;
  private nextCheck = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly fn: ThrottleFn | undefined,
    private readonly ctx: ThrottleContext,
    private readonly logger: ModuleLogger,
    private readonly resume: () => void,
  ) {}

  /** True while hand-out may go on; starts a check when one is due. */
  open(): boolean {
    if (!this.fn) return true;
    if (performance.now() >= this.nextCheck && !this.checking)
      void this.check();
    return this.go;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.nextCheck = Infinity;
  }

  private async check(): Promise<void> {
    this.checking = true;
    let pauseMs = 0;
    try {
      const answer = await (this.fn as ThrottleFn)(this.ctx);
      pauseMs =
        answer === true
          ? CHECK_MS
          : typeof answer === 'number' && answer > 0
            ? answer
            : 0;
    } catch (e) {
      this.logger.warn(
        `Job "${this.ctx.job}": the throttle threw (${(e as Error).message}); going on unthrottled.`,
      );
    } finally {
      this.checking = false;
    }
    if (this.nextCheck === Infinity) return;
    const wasGo = this.go;
    this.go = pauseMs === 0;
    this.nextCheck = performance.now() + (pauseMs || CHECK_MS);
    if (!this.go) {
      if (wasGo)
        this.logger.info(
          `Job "${this.ctx.job}": throttled; handing out paused for ${pauseMs} ms.`,
        );
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.check(), pauseMs);
    } else if (!wasGo) {
      this.resume();
    }
  }
}
