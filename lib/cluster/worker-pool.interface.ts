import type { WireRange, WireResult } from './ipc.messages';

/** One place ranges run: a forked worker, or the primary itself with `workers: 0`. */
export interface WorkerSlot {
  readonly id: string;
  readonly pid: number | undefined;
  /** Ranges it runs at once (`concurrency`). */
  readonly capacity: number;
  /** True when it can hold ranges beyond `capacity` and start them in the order sent (a forked worker's backlog). */
  readonly backlog: boolean;
  /** True once the worker asked for ranges. */
  ready: boolean;
  /** False when the worker cannot be reached any more; its exit follows. */
  send(ranges: WireRange[]): boolean;
  /**
   * `split`: they timed out and would go to their retry split in two: the slot answers for each
   * (`PoolListener.splitAnswered`), true only when its `ctx.fence` was not called (it refuses from then on).
   */
  abort(tokens: number[], reason: string, split?: boolean): void;
  /** Kills an unresponsive worker (its exit follows); false when it cannot be killed (inline). */
  kill(): boolean;
}

/** What a pool tells the run engine. */
export interface PoolListener {
  slotReady(slot: WorkerSlot): void;
  results(slot: WorkerSlot, results: WireResult[]): void;
  /** A handler of the run called `ctx.fence` in the slot (said once per run, before the fence's database call). */
  fenced(slot: WorkerSlot): void;
  /** The slot's answer to an abort with `split` (see WorkerSlot.abort). */
  splitAnswered(slot: WorkerSlot, token: number, split: boolean): void;
  /** A slot is gone; `expected` when it exited after being drained. */
  slotExited(
    slot: WorkerSlot,
    code: number | null,
    signal: string | null,
    expected: boolean,
  ): void;
  /** A worker process was forked (a replacement when `restart`). */
  forked(restart: boolean): void;
  /** The pool cannot go on (restart cap reached, no worker left). */
  fatal(reason: string): void;
}

/** Starts, restarts and drains the slots of one run on this host. */
export interface WorkerPool {
  start(): void;
  slots(): Iterable<WorkerSlot>;
  /** Tells every slot to finish and waits for them to exit, killing those still there after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
  /** Kills every worker at once (a forced exit). */
  killAll(): void;
  started: number;
  restarted: number;
}
