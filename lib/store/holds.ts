import type { StoredHold, StoreRunState } from './coordination-store.interface';
import { heldMsAt, holdAt } from './memory-job-state';

/** How long a claim during a hold tells its host to wait: until the hold ends, at most a second (a control may come). */
export const holdWait = (hold: StoredHold, now: number): number =>
  Math.max(1, Math.min(hold.until - now, 1000));

/**
 * What `state()` shows of a run's stored hold at `now` (the current or last
 * hold, and the time held in holds before it): the hold while it lasts, and
 * the time held in all, as the memory store shows it.
 */
export const holdView = (
  stored: { hold?: StoredHold; heldMs?: number; endedAt?: number | null },
  now: number,
): Pick<StoreRunState, 'hold' | 'heldMs'> => {
  const hold = holdAt(stored, now);
  return {
    ...(hold && { hold: { ...hold } }),
    heldMs: heldMsAt(stored, now),
  };
};

/** A hold's or turn's length as the stores keep it: whole ms (a database's integer column), never below 0. */
export const wholeMs = (ms: number): number =>
  Math.max(0, Math.ceil(Number.isFinite(ms) ? ms : 0));
