import type { JobDefinition } from '../job.registry';
import type { AssignedRun, WireRange } from './ipc.messages';
import { RangeExecutor } from './range-executor';
import type {
  PoolListener,
  WorkerPool,
  WorkerSlot,
} from './worker-pool.interface';

/** `workers: 0`: ranges run in the primary, `concurrency` at a time. */
export class InlinePool implements WorkerPool, WorkerSlot {
  readonly pid = process.pid;
  ready = true;
  readonly backlog = false;
  started = 0;
  restarted = 0;
  private readonly executor: RangeExecutor;
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    readonly id: string,
    readonly capacity: number,
    job: JobDefinition,
    run: AssignedRun,
    private readonly listener: PoolListener,
    fenceTable: string,
  ) {
    this.executor = new RangeExecutor(job, run, id, fenceTable, () =>
      this.listener.fenced(this),
    );
  }

  start(): void {
    this.listener.slotReady(this);
  }

  *slots(): Iterable<WorkerSlot> {
    yield this;
  }

  send(ranges: WireRange[]): boolean {
    for (const range of ranges) {
      const p = this.executor
        .execute(range)
        .then((result) => this.listener.results(this, [result]));
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
    return true;
  }

  /** Inline handlers cannot be killed. */
  kill(): boolean {
    return false;
  }

  /** A forced exit: inline handlers cannot be killed, their signals abort. */
  killAll(): void {
    this.executor.abortAll('forced exit');
  }

  abort(tokens: number[], reason: string, split?: boolean): void {
    const answers = split
      ? tokens.map((token) => [token, this.executor.split(token)] as const)
      : [];
    this.executor.abort(tokens, reason);
    for (const [token, ok] of answers)
      this.listener.splitAnswered(this, token, ok);
  }

  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>(
      (resolve) => (timer = setTimeout(resolve, timeoutMs)),
    );
    await Promise.race([Promise.allSettled([...this.running]), timeout]);
    clearTimeout(timer);
    this.listener.slotExited(this, 0, null, true);
  }
}
