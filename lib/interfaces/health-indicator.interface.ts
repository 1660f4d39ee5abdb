/** What a health indicator is asked with: the run it guards. */
export interface HealthContext {
  job: string;
  runId: string;
  /** The run's params, when it has any. */
  params?: Record<string, unknown>;
}

/**
 * A health indicator's answer. `hold`: no host hands out a new range for
 * `holdMs` (default `healthIntervalMs`), then the indicators are asked again;
 * `unknown`: it could not tell (logged and counted; not a hold).
 */
export type HealthSignal =
  | { state: 'ok' }
  | { state: 'hold'; reason: string; holdMs?: number }
  | { state: 'unknown'; reason: string };

/**
 * An entry of the `health` option: a function of the run that says whether
 * the database can take more work now. The built-ins (`postgresHealth`,
 * `mysqlHealth`) also name themselves, check their configuration when a run
 * starts, and close a connection they opened.
 */
export interface HealthIndicator {
  (ctx: HealthContext): Promise<HealthSignal>;
  /** How holds, logs and metrics name it; default: the function's own name, or `health[<index>]`. */
  indicatorName?: string;
  /**
   * Called once before a run's first range: rejects with a
   * `ParallelWorkerConfigError` naming the indicator and the option when its
   * configuration cannot work (a table that does not exist, a role that may
   * not read what it needs, a database it cannot reach).
   */
  verify?(): Promise<void>;
  /** Frees what the indicator opened itself (a pool made from a URL); called when the module closes. */
  close?(): Promise<void>;
}
