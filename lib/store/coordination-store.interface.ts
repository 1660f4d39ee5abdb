import type { ID } from '../interfaces/range.interface';
import type { RunSummary } from '../interfaces/run-summary.interface';
import type { JobStore } from './job-store.interface';

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
  /**
   * The run that loaded the range: part of its identity for `ctx.fence`,
   * kept when a later run hands it out again (after a cancel, `retryDead`).
   */
  run?: string;
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
 * What `start` answers: the run started or joined, or `replanFrom` when
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
  /** The stack of the error that failed the run (secrets masked), when it had one. */
  stack?: string;
  /** Dead letters the job holds after the run. */
  deadLetters: number;
  /** The run's last hold (the `health` option) this host put or saw: why, which indicator, from when until when. */
  lastHold?: StoredHold;
}

/** What the operators asked of the active run. */
export type RunControl = 'run' | 'pause';

/** A run's hold: why, who said so, and from when until when (store time, ms). */
export interface StoredHold {
  reason: string;
  indicator: string;
  since: number;
  until: number;
}

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
  /** The run's hold while it lasts (see `JobStore.hold`); absent when none. */
  hold?: StoredHold;
  /** How long the run has been on hold in all (ms, up to now); absent from a store without holds. */
  heldMs?: number;
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
 * Where coordination state lives. `MemoryStore` (one host), the SQLite store
 * (the processes of one machine) and the Redis store (any number of hosts)
 * implement it and pass one contract suite; implement it to coordinate
 * through something else. Each job's state is reached through its handle,
 * `job(name)`, whose calls say what they promise (`JobStore`).
 */
export interface CoordinationStore {
  /** The job's handle: every call on the job's state. A store may answer the same handle for a name each time. */
  job(name: string): JobStore;
  /** Where the state lives, without credentials (`Redis at host:port`), for errors and logs. Optional. */
  readonly where?: string;
  /** Why the store cannot be reached now, when it knows (the module's start-up error names it). Optional. */
  problem?(): string | undefined;
  /** Jobs that have state in the store (the CLI lists them when asked for an unknown one). Optional. */
  jobs?(): Promise<string[]>;
  /** Closes what the store itself opened; the module calls it at shutdown. Optional. */
  close?(): Promise<void>;
}
