import type {
  ThrottleContext,
  ThrottleFn,
} from '../interfaces/throttle.interface';
import type { ModuleLogger } from '../parallel-worker.logger';
import { THROTTLE_TIMED_OUT } from '../parallel-worker.messages';
import { TimeLimitError, withinMs } from './time-limit';
import { toWireError } from '../cluster/wire-error';

/** How often the throttle is asked while it lets work through, and how long a `true` pauses. */
const CHECK_MS = 1000;

/**
 * Asks the user's throttle at most once a second (it may be a query) and
 * holds hand-out from the first ask until it answers "go", and again while it
 * says "pause"; after a pause it is asked again before anything goes out.
 * `resume` is called when hand-out may go on. An answer that does not come
 * within `timeoutMs` counts as unknown, like a throw: hand-out goes on as if
 * it said go (a hung query must not stop a run for ever, silently, and the
 * store's leases and the database's own limits still hold), and the throttle
 * is asked again a second later.
 */
export class Throttle {
  private go = false;
  private checking = false;
  private nextCheck = 0;
  private timer?: NodeJS.Timeout;
  /** The last ask got no answer in time: warned once until it answers again. */
  private unanswered = false;

  constructor(
    private readonly fn: ThrottleFn | undefined,
    private readonly ctx: ThrottleContext,
    private readonly logger: ModuleLogger,
    private readonly resume: () => void,
    private readonly timeoutMs: number,
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
      const fn = this.fn as ThrottleFn;
      const answer = await withinMs(this.timeoutMs, () => fn(this.ctx), true);
      if (this.unanswered)
        this.logger.info(`Job "${this.ctx.job}": the throttle answers again.`);
      this.unanswered = false;
      pauseMs =
        answer === true
          ? CHECK_MS
          : typeof answer === 'number' && answer > 0
            ? answer
            : 0;
    } catch (e) {
      if (!(e instanceof TimeLimitError))
        this.logger.warn(
          `Job "${this.ctx.job}": the throttle threw (${toWireError(e).message}); going on unthrottled.`,
        );
      else if (!this.unanswered)
        this.logger.warn(
          THROTTLE_TIMED_OUT(this.ctx.job, this.timeoutMs, CHECK_MS),
        );
      this.unanswered = e instanceof TimeLimitError;
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
