import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { RunSummary } from '../interfaces/run-summary.interface';
import type { JobDefinition } from '../job.registry';
import { ENV_CONCURRENCY, ENV_WORKER_ID } from '../parallel-worker.constants';
import type { ModuleLogger } from '../parallel-worker.logger';
import {
  type AssignedRun,
  isOurs,
  message,
  parsePrimaryMessage,
  type PrimaryMessage,
  type WorkerMessage,
} from './ipc.messages';
import { WorkerRunner } from './worker-runner';

/**
 * `run()` in a forked worker: serves one run after another, of any job of the
 * app, as the primary assigns them, until the primary dismisses it (idle past
 * `workerIdleMs`, `app.close()`, a stop) or goes away.
 */
export class WorkerRole {
  private readonly workerId = process.env[ENV_WORKER_ID] as string;
  private runner?: WorkerRunner;
  /** Runners released by the primary that still answer what they held. */
  private readonly releasing = new Set<WorkerRunner>();
  private serving$?: Promise<RunSummary>;
  private dismissed = false;
  private last = { job: '', runId: '' };
  private readonly total = { ids: 0, ranges: 0 };
  private startedAt = 0;
  private lookup!: (name: string) => JobDefinition;
  private finish!: (summary: RunSummary) => void;
  private fail!: (error: unknown) => void;

  constructor(
    private readonly options: ResolvedParallelWorkerOptions,
    private readonly logger: ModuleLogger,
  ) {}

  get serving(): boolean {
    return this.serving$ !== undefined && !this.dismissed;
  }

  /**
   * Serves until dismissed. A second `run()` while serving (a main.ts that
   * runs several jobs) shares the first one's promise; one after the
   * dismissal resolves at once: the worker's work is over.
   */
  serve(
    requested: string | undefined,
    lookup: (name: string) => JobDefinition,
  ): Promise<RunSummary> {
    if (this.serving$)
      return this.dismissed ? this.nothing(requested) : this.serving$;
    this.lookup = lookup;
    this.startedAt = performance.now();
    this.last.job = requested ?? '';
    this.serving$ = new Promise((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    process.on('message', this.onMessage);
    process.on('disconnect', this.onDisconnect);
    // Ctrl-C reaches the whole process group: the primary decides how this worker stops.
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    this.send({ type: 'idle', workerId: this.workerId });
    return this.serving$;
  }

  /**
   * The app finished starting in this worker: when its main.ts has not called
   * `run()` yet, the primary is told, so a main.ts without the worker branch
   * (an HTTP app listening on the primary's port, a script doing other work)
   * fails its run at once naming the fix, instead of hanging or crashing
   * worker after worker.
   */
  booted(): void {
    if (!this.serving$) this.send({ type: 'booted', workerId: this.workerId });
  }

  /** Waits for the ranges in hand (for an app closing by itself, e.g. with shutdown hooks). */
  async idle(timeoutMs: number): Promise<void> {
    const held = [...this.releasing];
    if (this.runner) held.push(this.runner);
    await Promise.all(held.map((r) => r.idle(timeoutMs)));
  }

  private readonly onMessage = (m: unknown): void => {
    if (!isOurs(m)) return;
    const msg = parsePrimaryMessage(m);
    if (!msg)
      return this.logger.warn(
        `Worker ${this.workerId} ignored a malformed message from the primary: ${JSON.stringify(m).slice(0, 200)}`,
      );
    this.obey(msg);
  };

  private obey(msg: PrimaryMessage): void {
    switch (msg.type) {
      case 'assign':
        return this.assign(msg);
      case 'ranges':
      case 'abort':
        if (this.runner) return this.runner.handle(msg);
        return this.logger.warn(
          `Worker ${this.workerId} got ${msg.type} with no run assigned; ignored.`,
        );
      case 'release':
        void this.release().then(() =>
          this.send({ type: 'idle', workerId: this.workerId }),
        );
        return;
      case 'drain':
        this.dismissed = true;
        void this.release().then(() => this.end('completed'));
        return;
    }
  }

  private assign(run: AssignedRun): void {
    const { job, runId } = run;
    if (this.runner)
      this.logger.warn(
        `Worker ${this.workerId} was assigned run ${runId} of job "${job}" while serving run ${this.last.runId}; the new run replaces it.`,
      );
    // The primary's concurrency rules (it counts on it to tell which ranges may have started).
    const concurrency =
      Number(process.env[ENV_CONCURRENCY]) || this.options.concurrency;
    this.last = { job, runId };
    let def: JobDefinition;
    try {
      def = this.lookup(job);
    } catch (e) {
      // This worker's app does not declare the job (workerExec names another app): its run() rejects with why.
      this.end('failed', e);
      return;
    }
    this.runner = new WorkerRunner(
      def,
      run,
      this.workerId,
      concurrency,
      this.options.fence.table,
    );
  }

  /** Answers what the current run's runner holds; `idle` or the exit follows. */
  private async release(): Promise<void> {
    const runner = this.runner;
    this.runner = undefined;
    if (!runner) return;
    this.releasing.add(runner);
    const share = await runner.release();
    this.releasing.delete(runner);
    this.total.ids += share.ids;
    this.total.ranges += share.ranges;
  }

  private readonly onDisconnect = (): void => {
    this.logger.warn(
      `Worker ${this.workerId}: the primary disconnected; stopping.`,
    );
    this.dismissed = true;
    const share = this.runner?.abandon();
    this.runner = undefined;
    this.total.ids += share?.ids ?? 0;
    this.total.ranges += share?.ranges ?? 0;
    this.end('stopped');
  };

  private readonly onSignal = (signal: string): void => {
    this.logger.debug(
      `Worker ${this.workerId} got ${signal}; the primary stops it.`,
    );
  };

  private end(status: RunSummary['status'], error?: unknown): void {
    this.dismissed = true;
    process.off('message', this.onMessage);
    process.off('disconnect', this.onDisconnect);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    if (error !== undefined) return this.fail(error);
    this.finish(this.summary(status, this.total.ids, this.total.ranges));
  }

  private nothing(requested: string | undefined): Promise<RunSummary> {
    return Promise.resolve(
      this.summary('completed', 0, 0, requested ?? this.last.job),
    );
  }

  /** This worker's share of every run it served. */
  private summary(
    status: RunSummary['status'],
    ids: number,
    ranges: number,
    job = this.last.job,
  ): RunSummary {
    return {
      job,
      runId: this.last.runId,
      status,
      ids,
      ranges: { completed: ranges, retried: 0, dead: 0 },
      workers: { started: 0, restarted: 0 },
      durationMs: Math.round(performance.now() - this.startedAt),
      heldMs: 0,
      host: { ids, ranges },
    };
  }

  private send(body: { type: 'idle' | 'booted'; workerId: string }): void {
    if (!process.connected || !process.send) return;
    process.send(message<WorkerMessage>(body), undefined, {}, () => undefined);
  }
}
