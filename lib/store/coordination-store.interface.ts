import type { ID } from '../interfaces/range.interface';
import type { RunSummary } from '../interfaces/run-summary.interface';

/** The seed's storage shape: anything with `get` and `set`, such as a Map-like cache (`KeyValueStore` keeps a job's state in it). */
export interface KeyValueStorage {
  get(key: string): Promise<unknown> | unknown;
  set(key: string, value: string): Promise<unknown> | unknown;
}

/** A range as the store keeps it: ids, the cursor after them and the cursor before them. */
export interface StoredRange {
  ids: ID[];
  /** Cursor after this range. */
  lastId: ID;
  /** Cursor before this range: the handler's `lastId`. */
  prev: ID | null;
  payload?: Record<string, unknown>;
}

/**
 * A partition of a job's ids: those in `(after, upTo]`. `after: null` starts
 * at the first id, `upTo: null` runs to the last.
 */
export interface PartitionBounds {
  after: ID | null;
  upTo: ID | null;
}

/** A partition as the store keeps it with the job: bounds, its own cursor, and this run's progress in it. */
export interface StoredPartition extends PartitionBounds {
  cursor: ID | null;
  /** The loader returned nothing after `cursor` in this run. */
  exhausted: boolean;
  /** Ids handed out from it in this run. */
  ids: number;
  /** The host loading it, until this store time (claims, commits and heartbeats renew it); others take another partition meanwhile. */
  loader?: { owner: string; until: number };
}

/** A handed-out range. Ends as completed, failed, released or expired. */
export interface Lease {
  /**
   * Fencing token: increases per job; a new one for every hand-out. Never
   * below the store's time in ms x 1000, so tokens go up across processes,
   * restarts and failovers too.
   */
  token: number;
  runId: string;
  range: StoredRange;
  attempt: number;
  /** Host id of the primary that holds it. */
  owner: string;
  /** Store time (ms) after which another claim may take it over. */
  deadline: number;
}

/** What the next `claim()` tells a host to do. */
export type Claim =
  /** A range to hand out again (expired lease, due retry or released range). */
  | { type: 'lease'; lease: Lease; reason: 'expired' | 'retry' | 'released' }
  /** Nothing to re-hand: call the loader after `cursor` (of `partition`, when the job has partitions), then `commit()`. */
  | { type: 'load'; cursor: ID | null; partition?: number }
  /** Nothing now; other leases or retries are pending. Ask again later. */
  | { type: 'wait'; retryInMs: number }
  /** The run is over: loader exhausted, nothing leased, nothing to retry. */
  | { type: 'done' }
  /** Another host ended the run as failed. */
  | { type: 'failed'; error: string }
  /** The run was cancelled (from any host or the CLI). */
  | { type: 'cancelled' };

export type CommitResult =
  /** One lease per range, in order. `due`: an expired lease or a due retry is waiting, so claim before loading again. */
  | { type: 'leased'; leases: Lease[]; due: boolean }
  /** No ranges were given (the loader returned nothing) and the cursor had not moved: loading is over for this run. */
  | { type: 'exhausted' }
  /** Another host moved the cursor since the load started: discard the load and reload. */
  | { type: 'conflict'; cursor: ID | null };

export interface FailOptions {
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
}

export interface DeadLetter {
  runId: string;
  range: StoredRange;
  attempts: number;
  error: { message: string; stack?: string };
  /** Store time (ms). */
  at: number;
}

export interface RunCounters {
  ids: number;
  completed: number;
  retried: number;
  dead: number;
  workersStarted: number;
  workersRestarted: number;
}

/** Who started a run and with what; stored with it, so every host that joins sees the same. */
export interface RunStart {
  /** The run's params as JSON text (the module writes object keys sorted, so equal params are equal text). */
  params?: string;
  /** What `run(job, { startedBy })` said. */
  startedBy?: string;
  /** The id of the host that started it. */
  host?: string;
}

/**
 * What `startRun` answers: the run started or joined, or `replanFrom` when
 * the partitions given were planned from a cursor the job no longer has.
 */
export type StartRunResult =
  | { runId: string; joined: boolean; params?: string }
  | { replanFrom: ID | null };

/** How a run ended, as its history record says: `cancelled` is a stop asked of every host (cancel()). */
export type RunRecordStatus = 'completed' | 'stopped' | 'cancelled' | 'failed';

/** One ended run of a job, as `history()` lists it. Times are store time (ms since the epoch). */
export interface RunRecord {
  runId: string;
  job: string;
  /** What `run(job, { params })` was given; `null` for none. */
  params: Record<string, unknown> | null;
  status: RunRecordStatus;
  /** What `run(job, { startedBy })` said; `null` for nothing. */
  startedBy: string | null;
  /** The id of the host that started the run. */
  host: string | null;
  startedAt: number | null;
  endedAt: number;
  /** The summary of the host that wrote the record (counters are the whole run's, `host` that host's share). */
  summary: RunSummary;
  error?: string;
  /** Dead letters the job holds after the run. */
  deadLetters: number;
}

/** What the operators asked of the active run. */
export type RunControl = 'run' | 'pause';

export interface StoreRunState {
  runId: string | null;
  state: 'idle' | 'running' | 'completed' | 'failed' | 'stopped';
  /** `pause`: no host hands anything out until `run` again. */
  control: RunControl;
  error?: string;
  /** What the job's `@RangeTotal` said for this run. */
  total?: number;
  /** The run's params as JSON text, when it has any. */
  params?: string;
  /** What `run(job, { startedBy })` said for this run. */
  startedBy?: string;
  /** The host that started this run. */
  startedOn?: string;
  cursor: ID | null;
  exhausted: boolean;
  /** The job's partitions, each with its cursor; absent when it has none (then `cursor` is its cursor). */
  partitions?: StoredPartition[];
  counters: RunCounters;
  leased: number;
  /**
   * The run is active: a host holds a live lease of it, or took part in it
   * within its lease time and has not left (as when it waits out a retry's
   * backoff or a pause); what `reset` and `from` refuse on. False for a
   * running run whose hosts all stopped or went quiet (the next `run()`
   * resumes it). Optional: a store without it is judged by its leases.
   */
  active?: boolean;
  retrying: number;
  dead: number;
  startedAt: number | null;
  endedAt: number | null;
  /** Store time now, so callers can compute rates without trusting their clock. */
  now: number;
  /**
   * How the run before this one ended, when it ended before this one started
   * (a host that sees a cancel only after the next run started can tell it
   * from a run whose state was lost).
   */
  previous?: PreviousRun;
}

/** The run a new one replaced, as it ended. */
export interface PreviousRun {
  runId: string;
  state: 'completed' | 'failed' | 'stopped';
  error?: string;
}

/**
 * Where coordination state lives. `MemoryStore` (one host) and the Redis store
 * (any number of hosts) implement it and pass one contract suite; implement it
 * to coordinate through something else.
 *
 * Every method is atomic with respect to the others for one job.
 *
 * `declaredBy` (the last argument of the calls an app makes on a job: state,
 * control, reset, retryDead, deadLetters, history, leasesByOwner) names the
 * app's loader and handler, as `startRun` does: when the job holds another
 * declaration the call throws `RunRefusedError` and changes nothing, checked
 * in the same atomic step as the call. Not checked when omitted (the CLI acts
 * on any job) or when the job holds none yet (the first run stores it).
 */
export interface CoordinationStore {
  /**
   * Starts a run of `job` with `runId`, or joins the active one (its id is
   * returned). `from` (when not `undefined`) moves the cursor first; that is
   * refused while the active run is active: a host holds a live lease of it
   * or took part in it within its lease time and has not left (it may be
   * waiting out a retry's backoff or a pause).
   * `declaredBy` names the app's loader and handler: a job the store keeps for
   * another declaration is refused (two apps on one store never share a
   * cursor by accident) unless `from` is given, which takes the job over.
   * `partitions`: the job's partitions, each starting at its `after`; kept
   * with the job (and its cursors) from run to run. A new run stores them
   * when the job has none stored, or with `from` (which replaces the stored
   * ones, none when not given); a run joined ignores them.
   * `start`: params, startedBy and host, stored with a new run; a run joined
   * answers with its own `params` (absent when it has none), so the caller
   * can refuse to join with different ones.
   * `plannedFrom`: the job's cursor `partitions` were clipped at, as the
   * caller read it (a job with partitions passes it with none too, when it
   * read stored ones). A new run that would store partitions (none stored,
   * no `from`) starts only while the job's cursor is still that one and
   * partitions are given; else it changes nothing and answers
   * `{ replanFrom }`, the cursor now, to plan again from: a plan clipped at
   * a cursor that a reset moved back would skip the ids in between.
   */
  startRun(
    job: string,
    runId: string,
    from?: ID | null,
    declaredBy?: string,
    partitions?: PartitionBounds[],
    start?: RunStart,
    plannedFrom?: ID | null,
  ): Promise<StartRunResult>;
  /**
   * `request` (optional): the owner's id for this call, unique among its
   * recent calls. A claim or commit that arrives twice with the same one (a
   * client resending after a reconnect) answers the same the second time and
   * leases nothing more. Claims, commits and heartbeats also mark the owner as
   * taking part in the run until `leaseMs` from now.
   * With partitions, a `load` names the partition to load: not exhausted, not
   * in `loading` (those the owner loads already), not being loaded by another
   * host; the one with the fewest ids handed out this run. It is the owner's to
   * load until `leaseMs` after its last claim, commit or heartbeat.
   */
  claim(
    job: string,
    owner: string,
    leaseMs: number,
    request?: string,
    loading?: number[],
  ): Promise<Claim>;
  /**
   * Compares and sets the cursor from `expected` to the last range's
   * `lastId` and leases the ranges (consecutive loads, each after the one
   * before) with the next tokens, in one step; marks loading exhausted when
   * `ranges` is empty. With partitions, all of that is `partition`'s cursor
   * (the run's loading is exhausted once every partition is).
   */
  commit(
    job: string,
    owner: string,
    expected: ID | null,
    ranges: StoredRange[],
    leaseMs: number,
    request?: string,
    partition?: number,
  ): Promise<CommitResult>;
  /** Renews the owner's leases (none: only marks it as taking part); returns the tokens that are no longer the owner's. */
  heartbeat(
    job: string,
    owner: string,
    tokens: number[],
    leaseMs: number,
  ): Promise<number[]>;
  /** Counts the ranges as done, in one step; false for each whose lease was lost (not counted). */
  complete(job: string, owner: string, tokens: number[]): Promise<boolean[]>;
  /**
   * Schedules a retry (attempt + 1) or dead-letters the range; 'stale' when the lease was lost. With `ids` (a partial
   * failure) the rest of the range counts as a completed range, and only those ids go on; past the lease's deadline
   * nothing is counted ('stale': the lease expires and the whole range goes out again at attempt + 1).
   */
  fail(
    job: string,
    owner: string,
    token: number,
    options: FailOptions,
  ): Promise<'retry' | 'dead' | 'stale'>;
  /** Gives leases back to be handed out again with the same attempt. */
  release(job: string, owner: string, tokens: number[]): Promise<void>;
  /**
   * The owner stopped taking part in the job's run (its leases were given
   * back first): it no longer keeps the run active for `reset` and `from`.
   * Optional: without it, a host counts as taking part until `leaseMs` after
   * its last call.
   */
  leave?(job: string, owner: string): Promise<void>;
  /** Ends the active run `runId` as completed or failed (no-op if it already ended). */
  endRun(
    job: string,
    runId: string,
    state: 'completed' | 'failed',
    error?: string,
  ): Promise<void>;
  /**
   * Pauses, resumes or cancels the active run, for every host. Cancel ends it
   * as stopped: hosts release their leases, the cursor stays. Returns the
   * run's id, or null when no run is active.
   */
  control(
    job: string,
    action: 'pause' | 'resume' | 'cancel',
    declaredBy?: string,
  ): Promise<string | null>;
  /** Cursor back to the start (partitions forgotten) and nothing left to retry; refused while a run is active (as for `startRun` with `from`). */
  reset(job: string, declaredBy?: string): Promise<void>;
  /** Records the job's total for run `runId` (for percent and ETA). */
  setTotal(job: string, runId: string, total: number): Promise<void>;
  /**
   * Takes up to `wanted` of the job's `perSecond` hand-outs for the current
   * second (store time, shared by every host). Returns how many were granted
   * and, when none, how long until the next second.
   */
  takePermits(
    job: string,
    wanted: number,
    perSecond: number,
  ): Promise<{ granted: number; waitMs: number }>;
  /** Adds to the run's worker counters. */
  countWorkers(
    job: string,
    runId: string,
    started: number,
    restarted: number,
  ): Promise<void>;
  /** Moves every dead letter back to be handed out again (attempt 1); returns how many. */
  retryDead(job: string, declaredBy?: string): Promise<number>;
  state(job: string, declaredBy?: string): Promise<StoreRunState>;
  /** The job's dead letters, oldest first; `page` picks `limit` of them from `offset`. */
  deadLetters(
    job: string,
    page?: { offset: number; limit: number },
    declaredBy?: string,
  ): Promise<DeadLetter[]>;
  /**
   * Keeps `record` of an ended run, newest first, and the newest `keep`
   * records of the job. A record of the same run replaces the one kept
   * (moving it first), unless the kept one is the run's end (`completed`,
   * `cancelled`), or this one is `stopped` and the kept one is not (a host
   * that stopped while others ended the run). Kept across `reset`.
   * Optional: a store without it keeps no history.
   */
  recordRun?(job: string, record: RunRecord, keep: number): Promise<void>;
  /** The newest `limit` records of the job's ended runs, newest first. */
  history?(
    job: string,
    limit: number,
    declaredBy?: string,
  ): Promise<RunRecord[]>;
  /** Live leases per host (owner id), for views of the run. Optional. */
  leasesByOwner?(
    job: string,
    declaredBy?: string,
  ): Promise<Record<string, number>>;
  /** Where the state lives, without credentials (`Redis at host:port`), for errors and logs. Optional. */
  readonly where?: string;
  /** Closes what the store itself opened; the module calls it at shutdown. Optional. */
  close?(): Promise<void>;
}
