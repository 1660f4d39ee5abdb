import type { JobStatus } from '../interfaces/run-summary.interface';
import type {
  DeadLetter,
  RunRecord,
} from '../store/coordination-store.interface';
import type { RateSample } from './rate-history';

/** Everything the page shows about one job, read from the store (all hosts). */
export interface JobView {
  status: JobStatus;
  /** What the job declares besides its loader and handler. */
  traits: { total: boolean; partitions: boolean; params: boolean };
  hosts: Record<string, number>;
  runs: RunRecord[];
  /** The history record of the job's current run, once that run ended. */
  lastRun?: RunRecord;
  /** Ids done over the current run, as this dashboard saw them. */
  samples: RateSample[];
  dead: { offset: number; limit: number; letters: DeadLetter[] };
}

export interface PageOptions {
  /** Where the dashboard is mounted, `/jobs` (no trailing slash; `''` at the root). */
  base: string;
  title: string;
  controls: boolean;
  pollMs: number;
}

/** The controls of a job, by the name its POST route takes. */
export const ACTIONS = [
  'start',
  'pause',
  'resume',
  'cancel',
  'retry-dead',
  'reset',
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * The controls that fit the job's state: pause while running, resume while
 * paused, cancel either way; reset and start only while no run is active;
 * retry-dead only with dead letters.
 */
export function actionsFor(status: JobStatus): Action[] {
  const state = status.state;
  const active = ['running', 'paused', 'stopping'].includes(state);
  const fits: Record<Action, boolean> = {
    start: !active,
    pause: state === 'running',
    resume: state === 'paused',
    cancel: state === 'running' || state === 'paused',
    'retry-dead': status.ranges.dead > 0,
    reset: !active,
  };
  return ACTIONS.filter((a) => fits[a]);
}

const RANK: Record<string, number> = {
  running: 0,
  stopping: 0,
  paused: 1,
  failed: 2,
};

/** The running jobs first, then the paused, then the failed, then the rest, each by name. */
export function byUrgency(views: JobView[]): JobView[] {
  return [...views].sort(
    (a, b) =>
      (RANK[a.status.state] ?? 3) - (RANK[b.status.state] ?? 3) ||
      (a.status.job < b.status.job ? -1 : a.status.job > b.status.job ? 1 : 0),
  );
}
