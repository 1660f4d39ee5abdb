import { closeIndicators } from './run/health-indicators';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import cluster from 'node:cluster';
import { WorkerRole } from './cluster/worker-role';
import { RunRefusedError } from './errors/run-refused.error';
import { UnknownJobError } from './errors/unknown-job.error';
import { declarationOf, type JobDefinition, JobRegistry } from './job.registry';
import type { ResolvedParallelWorkerOptions } from './interfaces/parallel-worker-options.interface';
import type {
  JobStatus,
  RunOptions,
  RunSummary,
} from './interfaces/run-summary.interface';
import type { ID } from './interfaces/range.interface';
import { ENV_WORKER_ID, LOG_CONTEXT } from './parallel-worker.constants';
import { ParallelWorkerExplorer } from './parallel-worker.explorer';
import { ModuleLogger } from './parallel-worker.logger';
import * as m from './parallel-worker.messages';
import { ParallelWorkerOrchestrator } from './parallel-worker.orchestrator';
import {
  PARALLEL_WORKER_STORE,
  RESOLVED_OPTIONS,
} from './parallel-worker.providers';
import { jobState } from './run/job-state';
import { RateSampler } from './run/rate-sampler';
import { silenceSchedulerInWorker } from './run/scheduler-guard';
import type {
  CoordinationStore,
  DeadLetter,
  RunRecord,
} from './store/coordination-store.interface';
import type { DeadLetterKey } from './store/job-store.interface';

/**
 * Runs jobs: in the primary `run()` takes warm workers or forks them and
 * hands out ranges; in a worker `run()` serves ranges of any job until the
 * primary dismisses it.
 */
@Injectable()
export class ParallelWorker
  implements
    OnModuleInit,
    OnApplicationBootstrap,
    OnModuleDestroy,
    BeforeApplicationShutdown,
    OnApplicationShutdown
{
  private readonly logger: ModuleLogger;
  private readonly worker: WorkerRole;
  private readonly rates = new RateSampler();

  constructor(
    @Inject(RESOLVED_OPTIONS)
    private readonly options: ResolvedParallelWorkerOptions,
    @Inject(PARALLEL_WORKER_STORE) private readonly store: CoordinationStore,
    private readonly registry: JobRegistry,
    private readonly discovery: DiscoveryService,
    private readonly explorer: ParallelWorkerExplorer,
    private readonly orchestrator: ParallelWorkerOrchestrator,
  ) {
    this.logger = new ModuleLogger(LOG_CONTEXT, options.logging);
    this.worker = new WorkerRole(options, this.logger);
  }

  /** Identity of this host (this primary) in the store. */
  get hostId(): string {
    return this.orchestrator.hostId;
  }

  /** True in a worker process forked by this module; main.ts uses it to pick its role. */
  static isWorker(): boolean {
    return cluster.isWorker && typeof process.env[ENV_WORKER_ID] === 'string';
  }

  onModuleInit(): void {
    if (ParallelWorker.isWorker()) silenceSchedulerInWorker(this.discovery);
  }

  onApplicationBootstrap(): void {
    if (ParallelWorker.isWorker()) this.worker.booted();
  }

  /**
   * Primary: runs `job` to the end over all workers (and all hosts sharing the
   * store) and resolves with the summary; rejects with `RunFailedError` when
   * the run fails. Worker: serves every run the primary gives it, of any job,
   * until the primary dismisses it (idle past workerIdleMs, app.close(), a stop).
   */
  async run(job?: string, options: RunOptions = {}): Promise<RunSummary> {
    if (ParallelWorker.isWorker())
      return this.worker.serve(job, (name) => this.job(name));
    return this.orchestrator.run(this.job(job), options);
  }

  /** The names of the jobs this app declares. */
  jobs(): string[] {
    this.explorer.explore();
    return this.registry.names();
  }

  /**
   * @internal Starts a run in the background for the dashboard: resolves once
   * the store started it (refused as run() refuses, and while the job runs on
   * this host); `finished` is what run() would resolve with.
   */
  begin(
    job: string,
    options: RunOptions,
  ): Promise<{
    runId: string;
    joined: boolean;
    finished: Promise<RunSummary>;
  }> {
    return this.orchestrator.begin(this.job(job), options);
  }

  /** @internal What a job declares besides its loader and handler, for the dashboard. */
  traits(job: string): {
    total: boolean;
    partitions: boolean;
    params: boolean;
  } {
    const def = this.job(job);
    return {
      total: def.total !== undefined,
      partitions: def.partitions !== undefined,
      params: def.loader.params !== undefined,
    };
  }

  /** @internal Live leases per host (all hosts), for the dashboard. */
  async leasesByHost(job?: string): Promise<Record<string, number>> {
    const def = this.job(job);
    return (
      (await this.store
        .job(def.name)
        .leasesByOwner?.({ declaredBy: declarationOf(def) })) ?? {}
    );
  }

  /** @internal Lets the metrics module see every event, with or without EventEmitter2. */
  observe(observer: (event: string, payload: unknown) => void): void {
    this.orchestrator.observe(observer);
  }

  /** Progress of a job (all hosts), as the store and this host see it. */
  async status(job?: string): Promise<JobStatus> {
    const def = this.job(job);
    const name = def.name;
    const s = await this.store
      .job(name)
      .state({ declaredBy: declarationOf(def) });
    const local = this.orchestrator.isRunning(name);
    const state: JobStatus['state'] =
      s.state === 'running' && this.orchestrator.engine(name)?.stopping
        ? 'stopping'
        : jobState(s, local);
    const ids = s.counters.ids;
    const rate = Math.round(this.rates.rate(name, s));
    const total = s.total;
    return {
      job: name,
      state,
      runId: s.runId,
      cursor: s.cursor,
      ...(s.partitions && {
        partitions: s.partitions.map((p, index) => {
          const percent = p.exhausted ? 100 : keyPercent(p);
          return {
            index,
            after: p.after,
            upTo: p.upTo,
            cursor: p.cursor,
            ids: p.ids,
            exhausted: p.exhausted,
            ...(percent !== undefined && { percent }),
          };
        }),
      }),
      ids: { done: ids },
      ranges: {
        done: s.counters.completed,
        leased: s.leased,
        retrying: s.retrying,
        dead: s.dead,
      },
      rate,
      ...(total !== undefined
        ? {
            total,
            percent: total > 0 ? Math.min(100, (ids / total) * 100) : 100,
            ...(rate > 0 && state === 'running'
              ? { etaMs: Math.round((Math.max(0, total - ids) / rate) * 1000) }
              : {}),
          }
        : {}),
      ...(s.error ? { error: s.error } : {}),
      startedAt: s.startedAt,
      ...(s.hold && s.state === 'running' && { hold: { ...s.hold } }),
      ...(s.heldMs !== undefined && { heldMs: s.heldMs }),
    };
  }

  /** Pauses the job's active run on every host (within a second): leases are kept, nothing new is handed out. */
  async pause(job?: string): Promise<void> {
    await this.control(job, 'pause');
  }

  /** Resumes a paused run on every host. */
  async resume(job?: string): Promise<void> {
    await this.control(job, 'resume');
  }

  /**
   * Cancels the job's active run on every host: each stops as on `stop()`
   * and its `run()` resolves `stopped`. The cursor stays; released ranges are
   * handed out by the next run.
   */
  async cancel(job?: string): Promise<void> {
    await this.control(job, 'cancel');
    const name = this.job(job).name;
    await this.orchestrator.settled(name);
  }

  /** Moves the job's cursor back to the start (the next run handles every row); refused while a run is active. */
  async reset(job?: string): Promise<void> {
    const def = this.job(job);
    const name = def.name;
    if (this.orchestrator.isRunning(name))
      throw new RunRefusedError(name, m.RESET_HERE(name));
    await this.store.job(name).reset({ declaredBy: declarationOf(def) });
    this.logger.info(
      `Job "${name}": reset; the next run starts from the first row.`,
    );
  }

  private async control(
    job: string | undefined,
    action: 'pause' | 'resume' | 'cancel',
  ): Promise<void> {
    const def = this.job(job);
    const name = def.name;
    const runId = await this.store
      .job(name)
      .control({ action, declaredBy: declarationOf(def) });
    if (!runId) throw new RunRefusedError(name, m.NO_ACTIVE_RUN(name, action));
    this.logger.info(`Job "${name}": ${action} requested for run ${runId}.`);
    // This host obeys at once; the others within a second.
    await this.orchestrator.engine(name)?.followControl();
  }

  /** Graceful stop of `job` (of every running job when omitted): resolves when the run resolved as stopped. */
  async stop(job?: string): Promise<void> {
    await this.orchestrator.stop(
      job === undefined ? undefined : [this.job(job).name],
    );
  }

  /**
   * Hands the job's dead letters out again (attempt 1): at once when the job
   * is running, else in its next run. With `only`, just that dead letter
   * (`{ runId, firstId }`: its run and the first id of its range, as
   * `deadLetters()` lists them); one already retried, by someone else too,
   * answers 0 and retries nothing else. Resolves with how many were requeued.
   */
  async retryDead(
    job?: string,
    options: { only?: DeadLetterKey } = {},
  ): Promise<number> {
    const def = this.job(job);
    const name = def.name;
    const { only } = options;
    if (
      only !== undefined &&
      (typeof only?.runId !== 'string' ||
        !['string', 'number'].includes(typeof only.firstId))
    )
      throw new RangeError(
        `retryDead('${name}', { only }): only must be { runId: string, firstId: number | string }, got ${m.show(only)}.`,
      );
    const moved = await this.store.job(name).retryDead({
      declaredBy: declarationOf(def),
      ...(only && { only: { runId: only.runId, firstId: only.firstId } }),
    });
    if (moved)
      this.logger.info(
        only
          ? `Job "${name}": the dead letter of run ${only.runId} starting at id ${String(only.firstId)} will be handed out again.`
          : `Job "${name}": ${moved} dead-lettered ranges will be handed out again.`,
      );
    this.orchestrator.engine(name)?.wake();
    return moved;
  }

  /**
   * The job's ended runs (all hosts), newest first: run id, params, status
   * (`completed`, `stopped`, `cancelled`, `failed`), who started it, times,
   * the summary, the error and the dead letters left. Up to `limit` (default
   * and at most the `historyLimit` option).
   */
  async history(
    job?: string,
    options: { limit?: number } = {},
  ): Promise<RunRecord[]> {
    const def = this.job(job);
    const name = def.name;
    const limit = options.limit ?? this.options.historyLimit;
    if (!Number.isInteger(limit) || limit < 0)
      throw new RangeError(
        `history('${name}', { limit }): limit must be a whole number ≥ 0, got ${m.show(limit)}.`,
      );
    const store = this.store.job(name);
    return store.history
      ? store.history({ limit, declaredBy: declarationOf(def) })
      : [];
  }

  /**
   * The job's dead letters (all hosts, all runs until `retryDead()`), oldest
   * first: the range's ids, the run, the attempts and the last error. `offset`
   * and `limit` pick a page (`status().ranges.dead` counts them all).
   */
  async deadLetters(
    job?: string,
    page: { offset?: number; limit?: number } = {},
  ): Promise<DeadLetter[]> {
    const def = this.job(job);
    const name = def.name;
    const { offset = 0, limit } = page;
    for (const [key, value] of Object.entries({ offset, limit }))
      if (value !== undefined && (!Number.isInteger(value) || value < 0))
        throw new RangeError(
          `deadLetters('${name}', { ${key} }): ${key} must be a whole number ≥ 0, got ${m.show(value)}.`,
        );
    if (offset === 0 && limit === undefined)
      return this.store
        .job(name)
        .deadLetters({ declaredBy: declarationOf(def) });
    return this.store.job(name).deadLetters({
      offset,
      limit: limit ?? Number.MAX_SAFE_INTEGER,
      declaredBy: declarationOf(def),
    });
  }

  onModuleDestroy(): void {
    this.orchestrator.closingApp();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.worker.serving)
      await this.worker.idle(this.options.shutdownTimeoutMs);
    else {
      await this.orchestrator.stop();
      // Warm workers end with the app: a run-once main.ts exits as soon as it closed.
      await this.orchestrator.dismissWorkers();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    // A Redis client the module made from a URL or options is its own to close (an app's client stays open).
    await this.store.close?.().catch(() => undefined);
    await closeIndicators(this.options.health);
    // A drained worker ends by itself once its IPC channel is closed.
    if (ParallelWorker.isWorker() && process.connected) process.disconnect?.();
  }

  private job(job: string | undefined): JobDefinition {
    this.explorer.explore();
    const names = this.registry.names();
    if (job === undefined) {
      if (names.length === 1)
        return this.registry.get(names[0]) as JobDefinition;
      throw new UnknownJobError(
        job,
        names.length === 0 ? m.NO_JOBS() : m.JOB_REQUIRED(names),
      );
    }
    const def = this.registry.get(job);
    if (!def) throw new UnknownJobError(job, m.UNKNOWN_JOB(job, names));
    return def;
  }
}

/** How far a partition's cursor is through its bounds, for integer ids with both bounds set. */
function keyPercent(p: {
  after: ID | null;
  upTo: ID | null;
  cursor: ID | null;
}): number | undefined {
  const n = (v: ID | null) =>
    v !== null && /^-?\d+$/.test(String(v)) ? Number(v) : NaN;
  const [after, upTo, cursor] = [n(p.after), n(p.upTo), n(p.cursor)];
  if (!Number.isFinite(after) || !Number.isFinite(upTo) || upTo <= after)
    return undefined;
  const at = Number.isFinite(cursor) ? cursor : after;
  return Math.max(0, Math.min(100, ((at - after) / (upTo - after)) * 100));
}
