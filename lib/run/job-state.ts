import type { JobState } from '../interfaces/run-summary.interface';
import type { StoreRunState } from '../store/coordination-store.interface';

/**
 * The state `status()`, the CLI and the dashboard show for a job, from the
 * store's. A running run is `stopped` only when no host takes part in it any
 * more (all stopped or went quiet: the next `run()` resumes it); a run that
 * holds no lease at the moment (waiting out a retry's backoff) is still
 * running. `here`: this host runs it (a store that cannot say whether any
 * host takes part is judged by its leases).
 */
export function jobState(s: StoreRunState, here = false): JobState {
  if (s.state !== 'running') return s.state;
  if (!here && !(s.active ?? s.leased > 0)) return 'stopped';
  return s.control === 'pause' ? 'paused' : 'running';
}

/**
 * How views name a state: a run that completed leaving dead letters (rows
 * its handler never finished) says so, never a plain `completed`.
 */
export function stateLabel(state: string, dead: number): string {
  return state === 'completed' && dead > 0
    ? `completed with ${dead.toLocaleString('en')} dead letter${dead === 1 ? '' : 's'}`
    : state;
}
