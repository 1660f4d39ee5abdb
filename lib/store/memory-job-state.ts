/*
 * The memory store's picture of one job: plain data (so a key-value store can
 * save it as JSON), how a new one starts, the store's clock, and the pure
 * rules about ended runs its state machine (memory.store.ts) applies.
 */
import type { ID } from '../interfaces/range.interface';
import type {
  DeadLetter,
  Lease,
  PreviousRun,
  RunControl,
  RunCounters,
  RunRecord,
  RunStart,
  StoredPartition,
  StoredRange,
  StoreRunState,
  StoredHold,
} from './coordination-store.interface';

export interface Pending {
  range: StoredRange;
  runId: string;
  /** Attempt number of the next hand-out. */
  attempt: number;
  dueAt: number;
  reason: 'retry' | 'released';
}

/** Everything the store knows about one job; plain data so it can be saved as JSON. */
export interface MemoryJobState {
  runId: string | null;
  state: StoreRunState['state'];
  control: RunControl;
  total?: number;
  error?: string;
  cursor: ID | null;
  exhausted: boolean;
  /** The job's partitions, each with its own cursor (then `cursor` and `exhausted` are unused). */
  partitions?: StoredPartition[];
  /** The next fencing token, unless store time in ms x 1000 has passed it (see `lease`). */
  nextToken: number;
  counters: RunCounters;
  /** By token, in the order they were leased. */
  leases: Map<number, Lease>;
  pending: Pending[];
  dead: DeadLetter[];
  startedAt: number | null;
  endedAt: number | null;
  /** The loader and handler of the app whose job this is (`Class.method + Class.method`). */
  declaredBy?: string;
  /** Hosts taking part in the run: owner to the store time until which it counts as present. */
  hosts?: Record<string, number>;
  /** The active (or last) run's params (JSON text), startedBy and host. */
  start?: RunStart;
  /** Ended runs, newest first. */
  history?: RunRecord[];
  /** The run the active one replaced, as it ended. */
  previous?: PreviousRun;
  /** The parts of the state found lost (a store that saves it): a run without `from` is refused until `from` or reset. */
  lost?: string;
  /** The run's current or last hold (over once `until` passed). */
  hold?: StoredHold;
  /** Time the run was on hold in holds that ended before `hold` began. */
  heldMs?: number;
  /** Store time from which the next health turn may be taken. */
  healthAt?: number;
}

export const zeroCounters = (): RunCounters => ({
  ids: 0,
  completed: 0,
  retried: 0,
  dead: 0,
  workersStarted: 0,
  workersRestarted: 0,
});

/**
 * Store time: the wall clock at process start plus monotonic time since,
 * so a wall-clock step (NTP, a resumed VM) does not expire every lease at once.
 */
export const processTime = (): number =>
  Math.round(performance.timeOrigin + performance.now());

/** A job that has no state yet. */
export const newJobState = (): MemoryJobState => ({
  runId: null,
  state: 'idle',
  control: 'run',
  cursor: null,
  exhausted: false,
  nextToken: 1,
  counters: zeroCounters(),
  leases: new Map(),
  pending: [],
  dead: [],
  startedAt: null,
  endedAt: null,
});

/** What a job's state machine takes from its store: the store's time, and where a change goes. */
export interface MemoryJobHooks {
  now(): number;
  /** Called after every change to the job's state; stores that persist save it. */
  saved(state: MemoryJobState): Promise<void>;
}

/**
 * Whether a record of a run may replace the kept one of the same run: a
 * `completed` or `cancelled` record is the run's end and stays; `stopped`
 * (one host stopped) replaces only `stopped`.
 */
export function replaces(next: RunRecord['status'], kept: RunRecord['status']) {
  if (kept === 'completed' || kept === 'cancelled') return false;
  return next !== 'stopped' || kept === 'stopped';
}

/** The job's run as it ended, for the run that replaces it; undefined when it had not ended (or was reset). */
export function endedRun(s: MemoryJobState): PreviousRun | undefined {
  if (
    !s.runId ||
    (s.state !== 'completed' && s.state !== 'failed' && s.state !== 'stopped')
  )
    return undefined;
  return {
    runId: s.runId,
    state: s.state,
    ...(s.error !== undefined && { error: s.error }),
  };
}

/** The run's hold in place at `now`, if any. */
export const holdAt = (
  s: Pick<MemoryJobState, 'hold'>,
  now: number,
): StoredHold | undefined =>
  s.hold && s.hold.until > now ? s.hold : undefined;

/** How long the run has been on hold in all, up to `now`, or up to its end once it ended (a hold may outlast it). */
export const heldMsAt = (
  s: Pick<MemoryJobState, 'hold' | 'heldMs'> & { endedAt?: number | null },
  now: number,
): number =>
  (s.heldMs ?? 0) +
  (s.hold
    ? Math.max(
        0,
        Math.min(now, s.hold.until, s.endedAt ?? Infinity) - s.hold.since,
      )
    : 0);

/** Puts the run on hold at `now` (see `JobStore.hold`): extends a hold in place, or starts one after folding in the last. */
export function putOnHold(
  s: Pick<MemoryJobState, 'hold' | 'heldMs'>,
  o: { reason: string; indicator: string; holdMs: number },
  now: number,
): void {
  const until = now + o.holdMs;
  const { reason, indicator } = o;
  if (s.hold && s.hold.until > now) {
    s.hold = {
      reason,
      indicator,
      since: s.hold.since,
      until: Math.max(s.hold.until, until),
    };
    return;
  }
  if (s.hold) s.heldMs = (s.heldMs ?? 0) + (s.hold.until - s.hold.since);
  s.hold = { reason, indicator, since: now, until };
}
