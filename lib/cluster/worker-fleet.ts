import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import { ENV_CONCURRENCY, ENV_WORKER_ID } from '../parallel-worker.constants';
import type { ModuleLogger } from '../parallel-worker.logger';
import {
  type AssignedRun,
  isOurs,
  message,
  parseWorkerMessage,
  type PrimaryMessage,
  type WireRange,
  type WireResult,
} from './ipc.messages';
import type { WorkerSlot } from './worker-pool.interface';

/** A worker that has not said it is up by then is probably not calling `run()` in its main.ts. */
const READY_WARNING_MS = 30_000;
/** A worker whose app finished starting calls `run()` within this time, or its main.ts has no worker branch. */
export const BOOTED_SERVE_MS = 10_000;
/** How long an exited worker's last messages may take to be read. */
const EXIT_DRAIN_MS = 1000;

/** The run a worker serves: what the fleet tells about it. */
export interface FleetOwner {
  readonly job: string;
  readonly runId: string;
  readonly params?: AssignedRun['params'];
  readonly trace?: AssignedRun['trace'];
  /** The worker is up and assigned to this run. */
  assigned(worker: FleetWorker): void;
  results(worker: FleetWorker, results: WireResult[]): void;
  /** A handler of the run called `ctx.fence` in the worker. */
  fenced(worker: FleetWorker): void;
  /** The worker's answer to an abort with `split`. */
  splitAnswered(worker: FleetWorker, token: number, split: boolean): void;
  /** The run released the worker and it answered everything it held. */
  returned(worker: FleetWorker): void;
  exited(worker: FleetWorker, code: number | null, signal: string | null): void;
  /** The worker's main.ts never serves (see `FleetWorker.booted`): the run cannot go on as started. */
  misused(worker: FleetWorker, reason: string): void;
}

/** A worker process of this host; it serves one run at a time (its owner), or waits for the next. */
export class FleetWorker implements WorkerSlot {
  /** True while its run may send it ranges. */
  ready = false;
  readonly backlog = true;
  /** Its run released it (or it was dismissed): it answers what it holds, then idles or exits. */
  drained = false;
  /** Told to exit. */
  dismissed = false;
  killed = false;
  /** It said it is up (its `run()` was called). */
  up = false;
  /** Its app finished starting before its main.ts called `run()`. */
  booted = false;
  owner?: FleetOwner;
  idleTimer?: NodeJS.Timeout;

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

  abort(tokens: number[], reason: string, split?: boolean): void {
    this.post(
      message<PrimaryMessage>({
        type: 'abort',
        tokens,
        reason,
        ...(split && { split: true as const }),
      }),
    );
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

  /** An idle worker never keeps the primary alive: a run-once main.ts that ends without app.close() still exits (its workers follow). */
  keepAlive(on: boolean): void {
    const child = this.worker.process;
    const channel = (child as { channel?: { ref(): void; unref(): void } })
      .channel;
    if (on) {
      child.ref();
      channel?.ref();
    } else {
      child.unref();
      channel?.unref();
    }
  }
}

/**
 * The worker processes of this host, kept between runs: a run takes idle
 * ones (forking only what is missing), gives them back when it ends, and an
 * idle worker is dismissed after `workerIdleMs` (at once when it is 0), on
 * `app.close()` and on a stop signal.
 */
export class WorkerFleet {
  private readonly all = new Map<string, FleetWorker>();
  /** Idle workers, oldest first. */
  private readonly idle = new Set<FleetWorker>();
  private setUp = false;
  private closing = false;
  private closed?: Promise<void>;
  private gone?: () => void;

  constructor(
    private readonly options: ResolvedParallelWorkerOptions,
    private readonly logger: ModuleLogger,
  ) {}

  /** Workers up and waiting for a run. */
  get idleCount(): number {
    return this.idle.size;
  }

  /** A worker for `owner`'s run: an idle one, assigned at once (`forked` false), or a new one, assigned once it is up. */
  take(owner: FleetOwner): { worker: FleetWorker; forked: boolean } {
    const [warm] = this.idle;
    if (warm) {
      this.idle.delete(warm);
      clearTimeout(warm.idleTimer);
      warm.keepAlive(true);
      warm.owner = owner;
      this.assign(warm);
      return { worker: warm, forked: false };
    }
    const worker = this.fork();
    worker.owner = owner;
    return { worker, forked: true };
  }

  /** The run is done with `worker`: it answers what it holds, then idles (or exits when it is not kept). */
  release(worker: FleetWorker): void {
    if (worker.drained) return;
    worker.drained = true;
    worker.ready = false;
    // One still booting is released when it says it is up.
    if (!worker.up) return;
    if (this.keeps()) worker.post(message<PrimaryMessage>({ type: 'release' }));
    else this.dismiss(worker);
  }

  /** app.close() or a stop signal: idle workers exit now, busy ones when their run releases them; resolves when all exited. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = new Promise<void>((resolve) => (this.gone = resolve));
    for (const worker of [...this.idle]) this.dismiss(worker);
    if (this.all.size === 0) this.gone?.();
    return this.closed;
  }

  private keeps(): boolean {
    return !this.closing && this.options.workerIdleMs > 0;
  }

  private assign(worker: FleetWorker): void {
    const owner = worker.owner as FleetOwner;
    worker.drained = false;
    worker.post(
      message<PrimaryMessage>({
        type: 'assign',
        job: owner.job,
        runId: owner.runId,
        ...(owner.params && { params: owner.params }),
        ...(owner.trace && { trace: owner.trace }),
      }),
    );
    worker.ready = true;
    owner.assigned(worker);
  }

  /** Waits for the next run, for `workerIdleMs`. */
  private park(worker: FleetWorker): void {
    // Runs of two jobs at once fork a set each; one set (what a run takes) waits for the next.
    if (!this.keeps() || this.idle.size >= this.options.workers)
      return this.dismiss(worker);
    this.idle.add(worker);
    worker.keepAlive(false);
    worker.idleTimer = setTimeout(() => {
      this.logger.debug(
        `Worker ${worker.id} (pid ${worker.pid}) was idle for workerIdleMs (${this.options.workerIdleMs} ms); dismissing it.`,
      );
      this.dismiss(worker);
    }, this.options.workerIdleMs);
    worker.idleTimer.unref();
  }

  private dismiss(worker: FleetWorker): void {
    if (worker.dismissed) return;
    worker.dismissed = true;
    worker.drained = true;
    worker.ready = false;
    this.idle.delete(worker);
    clearTimeout(worker.idleTimer);
    worker.keepAlive(true);
    // One still booting has no listener yet: it is told when it says it is up.
    if (worker.up) this.sendDrain(worker);
  }

  private sendDrain(worker: FleetWorker): void {
    if (!worker.post(message<PrimaryMessage>({ type: 'drain' })))
      return void worker.kill();
    // A worker whose app does not close (an open pool, a timer) is killed rather than left behind.
    const killMs = Math.max(this.options.shutdownTimeoutMs, 5000);
    const killer = setTimeout(() => {
      if (!this.all.has(worker.id)) return;
      this.logger.warn(
        `Worker ${worker.id} (pid ${worker.pid}) did not exit ${killMs} ms after it was dismissed; killing it. Close what the app opened in onModuleDestroy.`,
      );
      worker.kill();
    }, killMs);
    killer.unref();
  }

  private fork(): FleetWorker {
    if (!this.setUp) {
      cluster.setupPrimary({
        exec: this.options.workerExec ?? process.argv[1],
        args: process.argv.slice(2),
      });
      this.setUp = true;
    }
    const id = `w-${randomBytes(4).toString('hex')}`;
    const worker = new FleetWorker(
      id,
      cluster.fork({
        [ENV_WORKER_ID]: id,
        [ENV_CONCURRENCY]: this.options.concurrency,
      }),
      this.options.concurrency,
    );
    this.all.set(id, worker);
    const warn = setTimeout(() => {
      if (!worker.up)
        this.logger.warn(
          `Worker ${id} (pid ${worker.pid}) has not asked for ranges after ${READY_WARNING_MS / 1000} s. Does main.ts call ParallelWorker.run() in the worker too?`,
        );
    }, READY_WARNING_MS);
    warn.unref();
    const child = worker.worker;
    child.on('message', (m: unknown) => {
      if (!isOurs(m)) return;
      const msg = parseWorkerMessage(m, (problem) =>
        this.logger.warn(
          `Worker ${id} (pid ${worker.pid}) sent ${problem}. The other results of its batch count.`,
        ),
      );
      if (!msg)
        return this.logger.warn(
          `Ignored a malformed message from worker ${id}: ${JSON.stringify(m).slice(0, 200)}`,
        );
      if (msg.type === 'results')
        return worker.owner?.results(worker, msg.results);
      if (msg.type === 'fenced') return worker.owner?.fenced(worker);
      if (msg.type === 'split')
        return worker.owner?.splitAnswered(worker, msg.token, msg.split);
      if (msg.type === 'booted') return this.booted(worker);
      clearTimeout(warn);
      this.idled(worker);
    });
    // EPIPE and ERR_IPC_CHANNEL_CLOSED land here when a worker dies mid-send; its exit follows.
    child.on('error', (e) => this.logger.debug(`Worker ${id}: ${e.message}`));
    child.on('exit', (code, signal) => {
      clearTimeout(warn);
      // Nothing more is sent to it while its last messages are read.
      worker.ready = false;
      let handled = false;
      const exited = () => {
        if (handled) return;
        handled = true;
        this.exited(worker, code, signal);
      };
      // What the worker sent before it died is read before its exit is handled (it comes before the
      // channel closes), so the run knows which of its ranges were answered or may have started.
      if (!child.isConnected()) return exited();
      const timer = setTimeout(exited, EXIT_DRAIN_MS);
      child.process.once('disconnect', () => (clearTimeout(timer), exited()));
    });
    return worker;
  }

  /**
   * The worker's app finished starting and its main.ts has not called
   * `run()`: it gets `BOOTED_SERVE_MS` to do so; a worker that exits first
   * (an HTTP app's `listen()` on the primary's port) is told at its exit.
   */
  private booted(worker: FleetWorker): void {
    if (worker.up) return;
    worker.booted = true;
    const timer = setTimeout(() => {
      if (worker.up || !this.all.has(worker.id)) return;
      const owner = worker.owner;
      worker.owner = undefined;
      owner?.misused(worker, NEVER_SERVES(worker, 'idle'));
      // It has no listener for a drain: it is ended here.
      worker.dismissed = true;
      worker.kill();
    }, BOOTED_SERVE_MS);
    timer.unref();
  }

  /** The worker said it is up (first time), or answered everything after a release. */
  private idled(worker: FleetWorker): void {
    const first = !worker.up;
    worker.up = true;
    const owner = worker.owner;
    if (worker.dismissed) return first ? this.sendDrain(worker) : undefined;
    if (first && owner && !worker.drained) return this.assign(worker);
    if (first && owner && !this.keeps()) {
      // Released before it was up, and not kept: it exits, and its run hears of it then.
      return this.dismiss(worker);
    }
    worker.owner = undefined;
    owner?.returned(worker);
    this.park(worker);
  }

  private exited(
    worker: FleetWorker,
    code: number | null,
    signal: string | null,
  ): void {
    this.all.delete(worker.id);
    this.idle.delete(worker);
    clearTimeout(worker.idleTimer);
    const owner = worker.owner;
    worker.owner = undefined;
    if (owner && worker.booted && !worker.up && !worker.dismissed)
      owner.misused(worker, NEVER_SERVES(worker, 'exited'));
    else if (owner) owner.exited(worker, code, signal);
    else if (!worker.dismissed)
      this.logger.warn(
        `Idle worker ${worker.id} (pid ${worker.pid}) exited with ${signal ? `signal ${signal}` : `code ${code}`}; the next run forks a new one.`,
      );
    if (this.all.size === 0) this.gone?.();
  }
}

/** Why a worker never served its run, and the fix: the worker branch in main.ts. */
const NEVER_SERVES = (worker: FleetWorker, how: 'idle' | 'exited'): string =>
  `worker ${worker.id} (pid ${worker.pid}) started the app but ${how === 'exited' ? 'exited' : `did not call ParallelWorker.run() within ${BOOTED_SERVE_MS / 1000} s`} before serving any range: its main.ts does not call ParallelWorker.run() in workers. Workers run the same main.ts; start it with "if (ParallelWorker.isWorker()) { await app.get(ParallelWorker).run(); return app.close(); }" before app.listen() or anything else the primary does${how === 'exited' ? " (an HTTP app's listen() fails in a worker on the port the primary holds)" : ''}`;
