import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { ModuleLogger } from '../parallel-worker.logger';
import type { AssignedRun, WireResult } from './ipc.messages';
import type { FleetOwner, FleetWorker, WorkerFleet } from './worker-fleet';
import type {
  PoolListener,
  WorkerPool,
  WorkerSlot,
} from './worker-pool.interface';

const RESTART_DELAY_MS = 200;

/**
 * The workers of one run on this host, taken from the host's fleet (warm ones
 * first, forking the rest), replaced when they die, and given back when the
 * run ends.
 */
export class ClusterPool implements WorkerPool, FleetOwner {
  started = 0;
  restarted = 0;
  private readonly live = new Map<string, FleetWorker>();
  private draining = false;
  private restartTimers = new Set<NodeJS.Timeout>();
  private drained?: () => void;

  constructor(
    private readonly run: AssignedRun,
    private readonly options: ResolvedParallelWorkerOptions,
    private readonly listener: PoolListener,
    private readonly logger: ModuleLogger,
    private readonly fleet: WorkerFleet,
  ) {}

  get job(): string {
    return this.run.job;
  }

  get runId(): string {
    return this.run.runId;
  }

  get params(): AssignedRun['params'] {
    return this.run.params;
  }

  get trace(): AssignedRun['trace'] {
    return this.run.trace;
  }

  /** Takes the run's workers: called once the loader found something to hand out (an empty run takes none). */
  start(): void {
    for (let i = 0; i < this.options.workers; i++) this.add(false);
    const warm = this.options.workers - this.started;
    this.logger.info(
      `Job "${this.job}": run ${this.runId} on ${this.options.workers} workers (${this.started} forked${warm ? `, ${warm} warm` : ''}).`,
    );
  }

  slots(): Iterable<WorkerSlot> {
    return this.live.values();
  }

  killAll(): void {
    this.draining = true;
    for (const worker of this.live.values()) worker.kill();
  }

  /** Gives every worker back to the fleet once it answered what it holds; kills those still busy after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    for (const t of this.restartTimers) clearTimeout(t);
    if (this.live.size === 0) return;
    const done = new Promise<void>((resolve) => (this.drained = resolve));
    for (const worker of this.live.values()) this.fleet.release(worker);
    const killer = setTimeout(() => {
      for (const worker of this.live.values()) {
        this.logger.warn(
          `Worker ${worker.id} (pid ${worker.pid}) did not finish ${timeoutMs} ms after its run ended; killing it. Close what the app opened in onModuleDestroy, and let handlers obey ctx.signal.`,
        );
        worker.kill();
      }
    }, timeoutMs);
    await done;
    clearTimeout(killer);
  }

  // ---- what the fleet tells ----

  assigned(worker: FleetWorker): void {
    // A warm worker is assigned inside take(): the engine hears of it once start() returned.
    queueMicrotask(() => {
      if (this.live.has(worker.id) && worker.ready)
        this.listener.slotReady(worker);
    });
  }

  results(worker: FleetWorker, results: WireResult[]): void {
    this.listener.results(worker, results);
  }

  fenced(worker: FleetWorker): void {
    this.listener.fenced(worker);
  }

  splitAnswered(worker: FleetWorker, token: number, split: boolean): void {
    this.listener.splitAnswered(worker, token, split);
  }

  returned(worker: FleetWorker): void {
    this.live.delete(worker.id);
    if (this.draining && this.live.size === 0) this.drained?.();
  }

  /** The worker's main.ts never serves: replacing it would fail the same way, so the run fails now, saying why. */
  misused(worker: FleetWorker, reason: string): void {
    this.live.delete(worker.id);
    this.listener.fatal(reason);
    if (this.draining && this.live.size === 0) this.drained?.();
  }

  exited(
    worker: FleetWorker,
    code: number | null,
    signal: string | null,
  ): void {
    this.live.delete(worker.id);
    const expected = worker.drained && code === 0;
    this.listener.slotExited(worker, code, signal, expected);
    if (this.draining) {
      if (this.live.size === 0) this.drained?.();
    } else this.replace(worker, code, signal);
  }

  private add(restart: boolean): void {
    const { worker, forked } = this.fleet.take(this);
    this.live.set(worker.id, worker);
    if (!forked) return;
    this.started++;
    this.listener.forked(restart);
  }

  private replace(
    worker: FleetWorker,
    code: number | null,
    signal: string | null,
  ): void {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!this.options.restartWorkerOnExit) {
      this.logger.warn(
        `Worker ${worker.id} (pid ${worker.pid}) exited with ${how}; restartWorkerOnExit is false, so it is not replaced.`,
      );
      if (this.live.size === 0 && this.restartTimers.size === 0) {
        this.listener.fatal(
          `every worker exited (the last with ${how}) and restartWorkerOnExit is false`,
        );
      }
      return;
    }
    const max = this.options.maxAllowedWorkerRestartsCount;
    if (this.restarted >= max) {
      this.listener.fatal(
        `worker ${worker.id} (pid ${worker.pid}) exited with ${how} and the restart cap maxAllowedWorkerRestartsCount = ${max} is reached`,
      );
      return;
    }
    this.restarted++;
    this.logger.warn(
      `Worker ${worker.id} (pid ${worker.pid}) exited with ${how}; starting a replacement (restart ${this.restarted} of ${max}).`,
    );
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.draining) this.add(true);
    }, RESTART_DELAY_MS);
    this.restartTimers.add(timer);
  }
}
