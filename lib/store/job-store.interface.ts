import type { ID } from '../interfaces/range.interface';
import type {
  Claim,
  CommitResult,
  DeadLetter,
  PartitionBounds,
  RunRecord,
  RunStart,
  StartRunResult,
  StoreRunState,
  StoredRange,
} from './coordination-store.interface';

/**
 * `declaredBy` (an option of the calls an app makes on a job: state,
 * control, reset, retryDead, deadLetters, history, leasesByOwner) names the
 * app's loader and handler, as `start` does: when the job holds another
 * declaration the call throws `RunRefusedError` and changes nothing, checked
 * in the same atomic step as the call. Not checked when omitted (the CLI acts
 * on any job) or when the job holds none yet (the first run stores it).
 */
export interface DeclaredBy {
  /** The app's loader and handler (`Class.method + Class.method`); omitted: the call acts on any app's job. */
  declaredBy?: string;
}

export interface StartOptions extends DeclaredBy {
  /** The run's id if it starts; a run joined keeps its own. */
  runId: string;
  /**
   * Moves the cursor first (when not `undefined`; `null`: the first id);
   * refused while the active run is active: a host holds a live lease of it
   * or took part in it within its lease time and has not left (it may be
   * waiting out a retry's backoff or a pause).
   */
  from?: ID | null;
  /**
   * `declaredBy`: a job the store keeps for another declaration is refused
   * (two apps on one store never share a cursor by accident) unless `from` is
   * given, which takes the job over.
   */
  declaredBy?: string;
  /**
   * The job's partitions, each starting at its `after`; kept with the job
   * (and its cursors) from run to run. A new run stores them when the job has
   * none stored, or with `from` (which replaces the stored ones, none when
   * not given); a run joined ignores them.
   */
  partitions?: PartitionBounds[];
  /**
   * Params, startedBy and host, stored with a new run; a run joined answers
   * with its own `params` (absent when it has none), so the caller can refuse
   * to join with different ones.
   */
  start?: RunStart;
  /**
   * The job's cursor `partitions` were clipped at, as the caller read it (a
   * job with partitions passes it with none too, when it read stored ones).
   * A new run that would store partitions (none stored, no `from`) starts
   * only while the job's cursor is still that one and partitions are given;
   * else it changes nothing and answers `{ replanFrom }`, the cursor now, to
   * plan again from: a plan clipped at a cursor that a reset moved back
   * would skip the ids in between.
   */
  plannedFrom?: ID | null;
}

/** Who asks: the host's id, and how long its answer holds. */
export interface OwnerLease {
  /** The host (primary) asking: its id, the owner of the leases it gets. */
  owner: string;
  /**
   * Lease time: the owner takes part in the run (and holds what it is handed
   * or loads) until `leaseMs` from now.
   */
  leaseMs: number;
}

/**
 * `request` (optional): the owner's id for this call, unique among its
 * recent calls. A claim or commit that arrives twice with the same one (a
 * client resending after a reconnect) answers the same the second time and
 * leases nothing more.
 */
export interface Resendable {
  /** The owner's id for this call, unique among its recent calls: the same one sent again answers the same. */
  request?: string;
}

export interface ClaimOptions extends OwnerLease, Resendable {
  /**
   * The partitions the owner loads already. With partitions, a `load` names
   * the partition to load: not exhausted, not in `loading`, not being loaded
   * by another host; the one with the fewest ids handed out this run. It is
   * the owner's to load until `leaseMs` after its last claim, commit or
   * heartbeat.
   */
  loading?: number[];
}

export interface CommitOptions extends OwnerLease, Resendable {
  /** The cursor the load started from: the commit is refused (`conflict`) when the cursor is another one now. */
  expected: ID | null;
  /**
   * Consecutive loads, each after the one before: the cursor moves to the
   * last one's `lastId` and each is leased with the next token. Empty: marks
   * loading exhausted.
   */
  ranges: StoredRange[];
  /**
   * With partitions: the partition loaded, whose cursor it all is (the run's
   * loading is exhausted once every partition is).
   */
  partition?: number;
}

export interface HeartbeatOptions extends OwnerLease {
  /** The owner's leases to renew; none: only marks it as taking part. */
  tokens: number[];
}

export interface LeaseTokens {
  owner: string;
  tokens: number[];
}

export interface FailOptions {
  owner: string;
  /** The failed range's lease. */
  token: number;
  error: { message: string; stack?: string };
  /**
   * Only these ids of the range failed (a `RangeItemsFailedError`): the
   * others count as done, and the retry or dead letter holds these only.
   * Omitted: the whole range failed.
   */
  ids?: ID[];
  /** Send to the dead letters instead of retrying. */
  dead: boolean;
  /** Delay before the retry is due. */
  retryInMs: number;
  /**
   * The range (with `ids`, the range of those ids) goes to its retry as two
   * ranges (`splitRange`): the first half of its ids, after the range's
   * `prev` up to that half's last id, and the rest, after that id up to the
   * range's `lastId`; both keep its payload and `run`, at attempt + 1, due
   * after the same delay. It counts as one retry. A range of fewer than 2 ids
   * is retried whole; ignored with `dead`. The halves are new ranges to
   * `ctx.fence` (other ids): split only a range no attempt of which can still
   * commit it whole (the engine splits a first hand-out whose worker refused
   * its fence), or a late commit of the whole range and the halves' commits
   * would both apply.
   */
  split?: boolean;
}

export interface LeaveOptions {
  owner: string;
}

export interface EndRunOptions {
  /** The run to end: a no-op when the active run is another one, or ended already. */
  runId: string;
  state: 'completed' | 'failed';
  error?: string;
}

export interface ControlOptions extends DeclaredBy {
  action: 'pause' | 'resume' | 'cancel';
}

export interface SetTotalOptions {
  /** The run it is for: ignored when the active run is another one. */
  runId: string;
  total: number;
}

export interface TakePermitsOptions {
  wanted: number;
  /** The job's limit of hand-outs per second, shared by every host. */
  perSecond: number;
}

export interface CountWorkersOptions {
  /** The run they count in: ignored when the active run is another one. */
  runId: string;
  started: number;
  restarted: number;
}

export interface DeadLettersOptions extends DeclaredBy {
  /** The page's first dead letter (oldest first); default 0. Neither this nor `limit`: all of them. */
  offset?: number;
  /** How many from `offset`; default all the rest. */
  limit?: number;
}

/**
 * One dead letter, by what stays true of it while the list changes: the run
 * it died in and the first id of its range (a run hands each id out in one
 * range at a time). Ids compare as text: a job's ids are all numbers or all
 * strings, so `50` and `'50'` name the same letter.
 */
export interface DeadLetterKey {
  runId: string;
  firstId: ID;
}

export interface RetryDeadOptions extends DeclaredBy {
  /** Only this dead letter; when no letter matches (retried or reset already) nothing is retried and 0 answered. */
  only?: DeadLetterKey;
}

export interface HoldOptions {
  /** The run it is for: ignored when the active run is another one, or not running. */
  runId: string;
  /** Why, as a person reads it (`replica 10.0.0.2 replay lag 7.2 s > maxReplicationLagMs 5000`). */
  reason: string;
  /** The indicator that said hold. */
  indicator: string;
  /** How long from now (store time). */
  holdMs: number;
}

export interface HealthTurnOptions {
  /** The run it is for: false when the active run is another one, or not running. */
  runId: string;
  /** The turn's length: no other caller gets a turn until this long from now (store time). */
  intervalMs: number;
}

export interface RecordRunOptions {
  record: RunRecord;
  /** How many of the job's newest records are kept. */
  keep: number;
}

export interface HistoryOptions extends DeclaredBy {
  /** How many of the newest records. */
  limit: number;
}

/**
 * One job's coordination state in a store (`CoordinationStore.job(name)`).
 * Every call is atomic with respect to the others for the job. The calls an
 * app makes on a job take `declaredBy` (see `DeclaredBy`).
 */
export interface JobStore {
  /**
   * Starts a run with `runId`, or joins the active one (its id is returned).
   * See each option for `from`, `declaredBy`, `partitions`, `start` and
   * `plannedFrom`.
   */
  start(options: StartOptions): Promise<StartRunResult>;
  /**
   * What the owner does next (see `Claim`). A claim sent again with the same
   * `request` answers the same lease and leases nothing more. Claims, commits
   * and heartbeats also mark the owner as taking part in the run until
   * `leaseMs` from now.
   */
  claim(options: ClaimOptions): Promise<Claim>;
  /**
   * Compares and sets the cursor from `expected` to the last range's
   * `lastId` and leases the ranges with the next tokens, in one step; marks
   * loading exhausted when `ranges` is empty. While the run is on hold,
   * ranges are refused as a `conflict` with the cursor unchanged (the host
   * then claims, and waits). With `partition`, all of that
   * is the partition's cursor. A commit sent again with the same `request`
   * answers the same and leases nothing more.
   */
  commit(options: CommitOptions): Promise<CommitResult>;
  /** Renews the owner's leases (none: only marks it as taking part); returns the tokens that are no longer the owner's. */
  heartbeat(options: HeartbeatOptions): Promise<number[]>;
  /** Counts the ranges as done, in one step; false for each whose lease was lost (not counted). */
  complete(options: LeaseTokens): Promise<boolean[]>;
  /**
   * Schedules a retry (attempt + 1) or dead-letters the range; 'stale' when the lease was lost. With `ids` (a partial
   * failure) the rest of the range counts as a completed range, and only those ids go on; past the lease's deadline
   * nothing is counted ('stale': the lease expires and the whole range goes out again at attempt + 1). With `split`
   * the retry is two ranges, each half of the ids.
   */
  fail(options: FailOptions): Promise<'retry' | 'dead' | 'stale'>;
  /** Gives leases back to be handed out again with the same attempt. */
  release(options: LeaseTokens): Promise<void>;
  /**
   * The owner stopped taking part in the job's run (its leases were given
   * back first): it no longer keeps the run active for `reset` and `from`.
   * Optional: without it, a host counts as taking part until `leaseMs` after
   * its last call.
   */
  leave?(options: LeaveOptions): Promise<void>;
  /** Ends the active run `runId` as completed or failed (no-op if it already ended). */
  endRun(options: EndRunOptions): Promise<void>;
  /**
   * Pauses, resumes or cancels the active run, for every host. Cancel ends it
   * as stopped: hosts release their leases, the cursor stays. Returns the
   * run's id, or null when no run is active.
   */
  control(options: ControlOptions): Promise<string | null>;
  /** Cursor back to the start (partitions forgotten) and nothing left to retry; refused while a run is active (as for `start` with `from`). */
  reset(options?: DeclaredBy): Promise<void>;
  /** Records the job's total for run `runId` (for percent and ETA). */
  setTotal(options: SetTotalOptions): Promise<void>;
  /**
   * Takes up to `wanted` of the job's `perSecond` hand-outs for the current
   * second (store time, shared by every host). Returns how many were granted
   * and, when none, how long until the next second.
   */
  takePermits(
    options: TakePermitsOptions,
  ): Promise<{ granted: number; waitMs: number }>;
  /** Adds to the run's worker counters. */
  countWorkers(options: CountWorkersOptions): Promise<void>;
  /**
   * Moves every dead letter (with `only`, that one) back to be handed out
   * again (attempt 1), in one step; returns how many. Two callers naming the
   * same letter at once: one gets 1, the other 0.
   */
  retryDead(options?: RetryDeadOptions): Promise<number>;
  /** The job's state now, as every host sees it. */
  state(options?: DeclaredBy): Promise<StoreRunState>;
  /** The job's dead letters, oldest first; with `offset` and `limit`, that page of them. */
  deadLetters(options?: DeadLettersOptions): Promise<DeadLetter[]>;
  /**
   * Keeps `record` of an ended run, newest first, and the newest `keep`
   * records of the job. A record of the same run replaces the one kept
   * (moving it first), unless the kept one is the run's end (`completed`,
   * `cancelled`), or this one is `stopped` and the kept one is not (a host
   * that stopped while others ended the run). Kept across `reset`.
   * Optional: a store without it keeps no history.
   */
  recordRun?(options: RecordRunOptions): Promise<void>;
  /** The newest `limit` records of the job's ended runs, newest first. */
  history?(options: HistoryOptions): Promise<RunRecord[]>;
  /** Live leases per host (owner id), for views of the run. Optional. */
  leasesByOwner?(options?: DeclaredBy): Promise<Record<string, number>>;
  /**
   * Puts the running run `runId` on hold until `holdMs` from now, for every
   * host: no claim hands out a range (a new one, a retry or an expired
   * lease) while it lasts; leases held go on. A hold in place is extended
   * to the later end and takes the new reason. No other caller gets a health
   * turn until `holdMs` after the hold ends: the host that put it asks again
   * as it ends, without a turn, and renews it or lets it go. Its time counts in
   * `StoreRunState.heldMs`. Optional: a store without it has no holds (the
   * health option then holds each host on its own).
   */
  hold?(options: HoldOptions): Promise<void>;
  /**
   * True for one caller per `intervalMs` of store time, across hosts: the
   * one that asks the health indicators now. Optional: without it every
   * host asks on its own.
   */
  healthTurn?(options: HealthTurnOptions): Promise<boolean>;
}
