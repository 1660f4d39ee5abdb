import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import {
  ENV_CONCURRENCY,
  ENV_JOB,
  ENV_RUN_ID,
  ENV_WORKER_ID,
} from '../parallel-worker.constants';
import type { ModuleLogger } from '../parallel-worker.logger';
import {
  isOurs,
  message,
  parseWorkerMessage,
  type PrimaryMessage,
  type WireRange,
} from './ipc.messages';
import type {
  PoolListener,
  WorkerPool,
  WorkerSlot,
} from './worker-pool.interface';

/** A worker that has not asked for ranges by then is probably not calling `run()` in its main.ts. */
const READY_WARNING_MS = 30_000;
const RESTART_DELAY_MS = 200;
/** How long an exited worker's last messages may take to be read. */
const EXIT_DRAIN_MS = 1000;

class ClusterSlot implements WorkerSlot {
  ready = false;
  readonly backlog = true;
  drained = false;
  killed = false;

  constructor(
    readonly id: string,
    readonly worker: Worker,
    readonly capacity: number,
  ) {}

  get pid(): number | undefined {
    return this.worker.process.pid;
  }

  send(ranges: WireRange[]): boolean {
    return this.post(message<PrimaryMessage>({ type: 'ranges', ranges }));
  }

  kill(): boolean {
    if (this.killed) return false;
    this.killed = true;
    this.worker.process.kill('SIGKILL');
    return true;
  }

  abort(tokens: number[], reason: string): void {
    this.post(message<PrimaryMessage>({ type: 'abort', tokens, reason }));
  }

  /** Sends over IPC; a worker that vanished is reported by its exit, never by a crash of the primary. */
  post(m: PrimaryMessage): boolean {
    if (!this.worker.isConnected()) return false;
    try {
      this.worker.send(m, () => undefined);
      return true;
    } catch {
      return false;
    }
  }
}

/** Forks the workers of one run with `cluster.fork`, replaces the ones that die, and drains them at the end. */
export class ClusterPool implements WorkerPool {
  started = 0;
  restarted = 0;
  private readonly live = new Map<string, ClusterSlot>();
  private draining = false;
  private restartTimers = new Set<NodeJS.Timeout>();
  private drained?: () => void;

  constructor(
    private readonly job: string,
    private readonly runId: string,
    private readonly options: ResolvedParallelWorkerOptions,
    private readonly listener: PoolListener,
    private readonly logger: ModuleLogger,
  ) {}

  start(): void {
    cluster.setupPrimary({
      exec: this.options.workerExec ?? process.argv[1],
      args: process.argv.slice(2),
    });
    for (let i = 0; i < this.options.workers; i++) this.fork(false);
  }

  slots(): Iterable<WorkerSlot> {
    return this.live.values();
  }

  killAll(): void {
    this.draining = true;
    for (const slot of this.live.values()) slot.kill();
  }

  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    for (const t of this.restartTimers) clearTimeout(t);
    if (this.live.size === 0) return;
    const done = new Promise<void>((resolve) => (this.drained = resolve));
    for (const slot of this.live.values()) {
      slot.drained = true;
      // A worker still booting has no listener yet: it is drained when it says it is ready.
      if (slot.ready) this.sendDrain(slot);
    }
    // A worker whose app does not close (an open pool, a timer) is killed rather than left behind.
    const killer = setTimeout(() => {
      for (const slot of this.live.values()) {
        this.logger.warn(
          `Worker ${slot.id} (pid ${slot.pid}) did not exit ${timeoutMs} ms after it was drained; killing it. Close what the app opened in onModuleDestroy.`,
        );
        slot.worker.process.kill('SIGKILL');
      }
    }, timeoutMs);
    await done;
    clearTimeout(killer);
  }

  private sendDrain(slot: ClusterSlot): void {
    if (!slot.post(message<PrimaryMessage>({ type: 'drain' }))) slot.kill();
  }

  private fork(restart: boolean): void {
    const id = `w-${randomBytes(4).toString('hex')}`;
    const worker = cluster.fork({
      [ENV_JOB]: this.job,
      [ENV_RUN_ID]: this.runId,
      [ENV_WORKER_ID]: id,
      [ENV_CONCURRENCY]: this.options.concurrency,
    });
    const slot = new ClusterSlot(id, worker, this.options.concurrency);
    this.live.set(id, slot);
    this.started++;
    this.listener.forked(restart);
    const warn = setTimeout(() => {
      if (!slot.ready)
        this.logger.warn(
          `Worker ${id} (pid ${slot.pid}) has not asked for ranges after ${READY_WARNING_MS / 1000} s. Does main.ts call ParallelWorker.run() in the worker too?`,
        );
    }, READY_WARNING_MS);
    worker.on('message', (m: unknown) => {
      if (!isOurs(m)) return;
      const msg = parseWorkerMessage(m);
      if (!msg)
        return this.logger.warn(
          `Ignored a malformed message from worker ${id}: ${JSON.stringify(m).slice(0, 200)}`,
        );
      if (msg.type === 'ready') {
        clearTimeout(warn);
        slot.ready = true;
        if (slot.drained) this.sendDrain(slot);
        else this.listener.slotReady(slot);
      } else this.listener.results(slot, msg.results);
    });
    // EPIPE and ERR_IPC_CHANNEL_CLOSED land here when a worker dies mid-send; its exit follows.
    worker.on('error', (e) => this.logger.debug(`Worker ${id}: ${e.message}`));
    worker.on('exit', (code, signal) => {
      clearTimeout(warn);
      // Nothing more is sent to it while its last messages are read.
      slot.ready = false;
      let handled = false;
      const exited = () => {
        if (handled) return;
        handled = true;
        this.live.delete(id);
        const expected = slot.drained && code === 0;
        this.listener.slotExited(slot, code, signal, expected);
        if (this.draining) {
          if (this.live.size === 0) this.drained?.();
        } else this.replace(slot, code, signal);
      };
      // What the worker sent before it died is read before its exit is handled (it comes before the
      // channel closes), so the engine knows which of its ranges were answered or may have started.
      if (!worker.isConnected()) return exited();
      const timer = setTimeout(exited, EXIT_DRAIN_MS);
      worker.process.once('disconnect', () => (clearTimeout(timer), exited()));
    });
  }

  private replace(
    slot: ClusterSlot,
    code: number | null,
    signal: string | null,
  ): void {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!this.options.restartWorkerOnExit) {
      this.logger.warn(
        `Worker ${slot.id} (pid ${slot.pid}) exited with ${how}; restartWorkerOnExit is false, so it is not replaced.`,
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
        `worker ${slot.id} (pid ${slot.pid}) exited with ${how} and the restart cap maxAllowedWorkerRestartsCount = ${max} is reached`,
      );
      return;
    }
    this.restarted++;
    this.logger.warn(
      `Worker ${slot.id} (pid ${slot.pid}) exited with ${how}; starting a replacement (restart ${this.restarted} of ${max}).`,
    );
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.draining) this.fork(true);
    }, RESTART_DELAY_MS);
    this.restartTimers.add(timer);
  }
}
