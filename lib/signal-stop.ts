import type { ModuleLogger } from './parallel-worker.logger';

/** After a signal stopped the runs, how long the app has to start closing by itself before the signal is raised again. */
const RERAISE_GRACE_MS = 1000;
/** How long a second signal waits for leases to be given back before the process exits. */
const ABANDON_MS = 2000;

/** What a signal does to this host's runs. */
export interface SignalTarget {
  /** The first signal: stop every run gracefully and end the workers. */
  stop(): Promise<void>;
  /** A second signal: give every lease back at once and kill the workers. */
  abandon(): Promise<void>;
}

/**
 * SIGTERM/SIGINT while runs are active on this host: the first one stops them
 * gracefully, a second one exits at once (leases given back first). No run
 * starts or is joined after it (`signal`).
 */
export class SignalStop {
  private count = 0;
  /** The signal that stopped this process's runs. */
  signal?: NodeJS.Signals;
  private reraise?: NodeJS.Timeout;
  private closing = false;

  constructor(
    private readonly logger: ModuleLogger,
    private readonly target: SignalTarget,
  ) {}

  /** Listens while runs are active, not otherwise (an idle app keeps its own signal handling). */
  watch(active: boolean): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.off(signal, this.onSignal);
      if (active) process.on(signal, this.onSignal);
    }
    if (!active) this.count = 0;
  }

  /** The app is closing (app.close()): it ends by itself, so a stopped signal is not raised again. */
  appClosing(): void {
    this.closing = true;
    clearTimeout(this.reraise);
  }

  /**
   * The runs stopped after `signal`. An app that handles the signal itself
   * (`enableShutdownHooks()`, or its own listener) goes on shutting down as it
   * chose; otherwise the module raises the signal again, so the process ends
   * as it would have without the module (a cron or HTTP app would go on forever).
   */
  private afterStop(signal: NodeJS.Signals): void {
    process.off(signal, this.onSignal);
    if (process.listenerCount(signal) > 0 || this.closing) return;
    // A run-once main.ts goes on to app.close() (which cancels this) and exits by itself; the timer never keeps it alive.
    this.reraise = setTimeout(() => {
      this.logger.warn(
        `${signal}: runs stopped; the app has no ${signal} handler of its own (enableShutdownHooks()) and did not close, so the process ends now.`,
      );
      process.kill(process.pid, signal);
    }, RERAISE_GRACE_MS);
    this.reraise.unref();
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (++this.count === 1) {
      this.signal = signal;
      this.logger.warn(
        `${signal}: stopping gracefully (a second ${signal} exits at once).`,
      );
      void this.target.stop().then(() => this.afterStop(signal));
      return;
    }
    this.logger.warn(`${signal} again: exiting now.`);
    void Promise.race([
      this.target.abandon(),
      new Promise((r) => setTimeout(r, ABANDON_MS)),
    ]).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
}
