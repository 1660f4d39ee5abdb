import type { JobDefinition } from '../job.registry';
import {
  type AssignedRun,
  message,
  type RunMessage,
  type WireRange,
  type WireResult,
  type WorkerMessage,
} from './ipc.messages';
import { RangeExecutor } from './range-executor';

/** This worker's share of one run. */
export interface WorkerShare {
  ids: number;
  ranges: number;
}

/**
 * The worker side of one run: handles the ranges the primary sends with the
 * job's handler, `concurrency` at a time, and answers with batched results
 * until the primary releases the worker from the run.
 *
 * The primary may send more ranges than `concurrency` (a short backlog, so a
 * worker with quick handlers never waits a round trip for its next range).
 * A range from the backlog starts only once the results that freed its place
 * were sent, so the primary can tell which ranges may have started: the
 * oldest `concurrency` it has no answer for.
 */
export class WorkerRunner {
  private readonly executor: RangeExecutor;
  private readonly backlog: WireRange[] = [];
  /** Ranges started whose results were not sent yet. */
  private running = 0;
  private queue: WireResult[] = [];
  private flushing = false;
  private releasing = false;
  private ids = 0;
  private ranges = 0;
  private finish!: (share: WorkerShare) => void;
  private readonly done: Promise<WorkerShare>;

  constructor(
    job: JobDefinition,
    run: AssignedRun,
    workerId: string,
    private readonly concurrency: number,
    fenceTable: string,
  ) {
    // Told once per run, before the first fence's database call: from then on the primary splits no range of this
    // run (before that, it asks first: `handle`, abort with `split`).
    this.executor = new RangeExecutor(job, run, workerId, fenceTable, () =>
      this.send(message<WorkerMessage>({ type: 'fenced' })),
    );
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  /** Waits for the ranges in hand (for an app closing by itself, e.g. with shutdown hooks). */
  async idle(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (
      (this.running > 0 ||
        this.backlog.length > 0 ||
        this.queue.length > 0 ||
        this.flushing) &&
      performance.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A message of the run from the primary: ranges to handle, or ranges to abort. */
  handle(msg: RunMessage): void {
    if (msg.type === 'ranges') {
      this.backlog.push(...msg.ranges);
      this.pump();
      return;
    }
    // Asked to split them (they timed out): each is answered before its handler hears of the abort.
    if (msg.split)
      for (const token of msg.tokens)
        this.send(
          message<WorkerMessage>({
            type: 'split',
            token,
            split: this.executor.split(token),
          }),
        );
    this.executor.abort(msg.tokens, msg.reason);
    // An aborted range still waiting never starts: it is answered as failed with the reason.
    const aborted = new Set(msg.tokens);
    for (let i = this.backlog.length - 1; i >= 0; i--) {
      if (!aborted.has(this.backlog[i].token)) continue;
      const [range] = this.backlog.splice(i, 1);
      this.queue.push({
        token: range.token,
        ok: false,
        error: { message: msg.reason },
        notStarted: true,
      });
    }
    if (this.queue.length) this.flush();
  }

  /** The primary is done with this worker for the run: resolves once everything it holds is answered. */
  release(): Promise<WorkerShare> {
    this.releasing = true;
    this.maybeFinish();
    return this.done;
  }

  /** The primary is gone: handlers are aborted, nothing more is sent. */
  abandon(): WorkerShare {
    this.executor.abortAll('the primary is gone');
    this.releasing = true;
    this.queue = [];
    this.backlog.length = 0;
    return { ids: this.ids, ranges: this.ranges };
  }

  /** Starts ranges from the backlog while fewer than `concurrency` run. */
  private pump(): void {
    while (this.running < this.concurrency && this.backlog.length > 0) {
      const range = this.backlog.shift() as WireRange;
      this.running++;
      void this.executor.execute(range).then((result) => {
        if (result.ok && !result.aborted) {
          this.ids += range.ids.length;
          this.ranges++;
        }
        this.queue.push(result);
        this.flush();
      });
    }
  }

  /**
   * Batches results that finish in the same turn of the event loop into one
   * message; their places go to the backlog only after it is sent.
   */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      const results = this.queue;
      this.queue = [];
      this.flushing = false;
      // Answers for ranges aborted in the backlog free no place: they never ran.
      const freed = results.filter((r) => r.ok || !r.notStarted).length;
      const next = () => {
        this.running -= freed;
        this.pump();
        this.maybeFinish();
      };
      // The places go to the backlog once the results are written out: a crash after that cannot lose them.
      if (results.length)
        this.send(message<WorkerMessage>({ type: 'results', results }), next);
      else next();
    });
  }

  private maybeFinish(): void {
    if (
      this.releasing &&
      this.running === 0 &&
      this.backlog.length === 0 &&
      this.queue.length === 0 &&
      !this.flushing
    )
      this.finish({ ids: this.ids, ranges: this.ranges });
  }

  /** `written`: once the message is written to the channel (not when the primary is gone: this worker is ending). */
  private send(m: WorkerMessage, written?: () => void): void {
    if (!process.connected || !process.send) return;
    process.send(m, undefined, {}, (e) => {
      if (!e) written?.();
    });
  }
}
