/** What the `throttle` option is called with. */
export interface ThrottleContext {
  job: string;
  runId: string;
}

/**
 * The `throttle` option: `true` (or a number of ms) pauses handing out, e.g.
 * while replication lags; `false` lets it go on.
 */
export type ThrottleFn = (
  ctx: ThrottleContext,
) => boolean | number | Promise<boolean | number>;
