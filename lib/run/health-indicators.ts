/*
 * The indicators of a run as the health gate asks them: the `health` option's
 * and the `throttle` option's, each named; what counts as an answer; their
 * configuration check before a run and their close at shutdown.
 */
import type {
  HealthIndicator,
  HealthSignal,
} from '../interfaces/health-indicator.interface';
import type { ThrottleFn } from '../interfaces/throttle.interface';

/** How long a `true` from the `throttle` option holds (its answer in ms holds that long). */
const THROTTLE_HOLD_MS = 1000;
/** The longest hold one answer may ask for: a longer one (an absolute time where a duration was meant) is unknown. */
export const MAX_HOLD_MS = 60 * 60 * 1000;

/** An indicator with the name holds, logs and metrics give it. */
export interface NamedIndicator {
  name: string;
  ask: HealthIndicator;
  /** How often it is asked when it is the only one (the throttle: every second, as before). */
  everyMs?: number;
}

/** The `health` option's indicators and the `throttle` option as one more, each named. */
export function indicatorsOf(
  health: readonly HealthIndicator[] | undefined,
  throttle: ThrottleFn | undefined,
): NamedIndicator[] {
  const named: NamedIndicator[] = (health ?? []).map((ask, i) => ({
    name:
      ask.indicatorName ??
      (ask.name && ask.name !== 'anonymous' ? ask.name : `health[${i}]`),
    ask,
  }));
  if (throttle)
    named.push({
      name: 'throttle',
      everyMs: THROTTLE_HOLD_MS,
      ask: async (ctx) => {
        const answer = await throttle(ctx);
        if (answer === true)
          return {
            state: 'hold',
            reason: 'the throttle option said pause',
            holdMs: THROTTLE_HOLD_MS,
          };
        if (typeof answer === 'number' && answer > 0)
          return {
            state: 'hold',
            reason: `the throttle option said pause for ${answer} ms`,
            holdMs: answer,
          };
        if (typeof answer !== 'number' && typeof answer !== 'boolean')
          return {
            state: 'unknown',
            reason: `the throttle option answered ${JSON.stringify(answer) ?? typeof answer}, not true, false or a number of ms`,
          };
        return { state: 'ok' };
      },
    });
  return named;
}

/** An indicator's answer as a signal; anything else is unknown. */
export function checked(answer: unknown): HealthSignal {
  const a = answer as Partial<HealthSignal> | undefined;
  if (a?.state === 'ok') return { state: 'ok' };
  if (a?.state === 'hold' || a?.state === 'unknown') {
    const reason =
      typeof (a as { reason?: unknown }).reason === 'string'
        ? (a as { reason: string }).reason
        : 'no reason given';
    if (a.state === 'unknown') return { state: 'unknown', reason };
    const holdMs = (a as { holdMs?: unknown }).holdMs;
    if (holdMs === undefined) return { state: 'hold', reason };
    if (
      typeof holdMs !== 'number' ||
      !Number.isFinite(holdMs) ||
      holdMs <= 0 ||
      holdMs > MAX_HOLD_MS
    )
      return {
        state: 'unknown',
        reason: `said hold (${reason}) for holdMs ${typeof holdMs === 'number' ? String(holdMs) : (JSON.stringify(holdMs) ?? typeof holdMs)}, not a number of ms from 1 to ${MAX_HOLD_MS} (a duration, not a time)`,
      };
    return { state: 'hold', reason, holdMs };
  }
  return {
    state: 'unknown',
    reason: `answered ${JSON.stringify(answer) ?? String(answer)}, not { state: 'ok' | 'hold' | 'unknown' }`,
  };
}

/** Indicators whose configuration was verified in this process (once is enough: a cron tick does not ask again). */
const verified = new WeakSet<HealthIndicator>();

/**
 * Before a run's first range: each indicator's `verify()` (its tables exist,
 * its role may read what it needs, its database answers). The first that
 * fails rejects the run with its error, before anything is started.
 */
export async function verifyIndicators(
  health: readonly HealthIndicator[],
): Promise<void> {
  for (const indicator of health) {
    if (!indicator.verify || verified.has(indicator)) continue;
    await indicator.verify();
    verified.add(indicator);
  }
}

/** Closes what the indicators opened themselves (a pool made from a URL); never throws. */
export async function closeIndicators(
  health: readonly HealthIndicator[],
): Promise<void> {
  for (const h of health) await h.close?.().catch(() => undefined);
}
