import type { StoredHold } from './coordination-store.interface';

/** How long a claim during a hold tells its host to wait: until the hold ends, at most a second (a control may come). */
export const holdWait = (hold: StoredHold, now: number): number =>
  Math.max(1, Math.min(hold.until - now, 1000));
