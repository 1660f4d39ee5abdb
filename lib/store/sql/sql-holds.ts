import type { StoredHold } from '../coordination-store.interface';
import type { HealthTurnOptions, HoldOptions } from '../job-store.interface';
import { wholeMs } from '../holds';
import { putOnHold } from '../memory-job-state';
import type { SqlTransaction } from './sql-dialect.interface';
import { setJob, type JobRow } from './sql.rows';

/*
 * Holds and health turns (the health option) in the SQL store: columns of
 * the job's row, in store time, each call inside the transaction the store
 * opened on the job's locked row, so hosts take turns and holds add up as in
 * the memory store (the same rules: putOnHold).
 */

/** Columns of a run without a hold, time held or health turn: a new run starts so. */
export const NO_HOLD = {
  hold_reason: null,
  hold_indicator: null,
  hold_since: null,
  hold_until: null,
  held_ms: 0,
  health_at: null,
};

export async function holdIn(
  tx: SqlTransaction,
  s: JobRow,
  { runId, reason, indicator, holdMs }: HoldOptions,
): Promise<void> {
  if (s.runId !== runId || s.state !== 'running') return;
  const next: { hold?: StoredHold; heldMs?: number } = {
    hold: s.hold,
    heldMs: s.heldMs,
  };
  putOnHold(next, { reason, indicator, holdMs: wholeMs(holdMs) }, tx.now);
  const hold = next.hold as StoredHold;
  await setJob(tx, s.id, {
    hold_reason: hold.reason,
    hold_indicator: hold.indicator,
    hold_since: hold.since,
    hold_until: hold.until,
    held_ms: next.heldMs ?? 0,
    // No other host's turn until a hold's length after it ends: the host that put it asks again as it ends.
    health_at: hold.until + wholeMs(holdMs),
  });
}

export async function healthTurnIn(
  tx: SqlTransaction,
  s: JobRow,
  { runId, intervalMs }: HealthTurnOptions,
): Promise<boolean> {
  if (s.runId !== runId || s.state !== 'running') return false;
  if ((s.healthAt ?? 0) > tx.now) return false;
  await setJob(tx, s.id, { health_at: tx.now + wholeMs(intervalMs) });
  return true;
}
