import { verifyIndicators } from './run/health-indicators';
import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import AsyncLock from 'async-lock';
import { randomBytes, randomUUID } from 'node:crypto';
import { ParallelWorkerConfigError } from './errors/parallel-worker-config.error';
import { RunRefusedError } from './errors/run-refused.error';
import { StoreUnavailableError } from './errors/store-unavailable.error';
import { hostname } from 'node:os';
import { ClusterPool } from './cluster/cluster-pool';
import { InlinePool } from './cluster/inline-pool';
import { WorkerFleet } from './cluster/worker-fleet';
import { RunFailedError } from './errors/run-failed.error';
import { declarationOf, type JobDefinition } from './job.registry';
import type { ResolvedParallelWorkerOptions } from './interfaces/parallel-worker-options.interface';
import type {
  RunOptions,
  RunSummary,
} from './interfaces/run-summary.interface';
import { LOG_CONTEXT } from './parallel-worker.constants';
import { ModuleLogger } from './parallel-worker.logger';
import { SignalStop } from './signal-stop';
import {
  ACTIVE_HERE,
  MEMORY_STORE_FORGETS,
  PARAMS_DIFFER,
  show,
  STORE_UNAVAILABLE,
} from './parallel-worker.messages';
import type { AssignedRun } from './cluster/ipc.messages';
import { toWireError } from './cluster/wire-error';
import { InvalidParamsError } from './errors/invalid-params.error';
import { checkParams, frozen, paramsText } from './run/run-params';
import { RunSpan } from './run/tracing';
import {
  PARALLEL_WORKER_STORE,
  RESOLVED_OPTIONS,
} from './parallel-worker.providers';
import type { EventSink } from './run/run-deps';
import { RunEngine } from './run/run-engine';
import type { CoordinationStore } from './store/coordination-store.interface';
import { MemoryStore } from './store/memory.store';
import { recordTotal, startOrJoin, type RunPlanDeps } from './run/run-plan';

/** A run of a job on this host, from `run()` until it resolves. */
interface ActiveRun {
  engine?: RunEngine;
  /** Its params as stored (JSON text). */
  params?: string;
  promise: Promise<RunSummary>;
  /** stop() came before the engine existed (the run was still starting). */
  stopRequested?: boolean;
  /** Told once the store started (or joined) the run: `begin()` waits for it. */
  onStart?: (runId: string, joined: boolean) => void;
}

/**
 * Does the work behind `ParallelWorker` in the primary: starts or joins runs
 * in the store, builds their engines and worker pools, emits their events,
 * and turns SIGTERM/SIGINT into a graceful stop while a run is active.
 */
@Injectable()
export class ParallelWorkerOrchestrator implements OnApplicationBootstrap {
  /** Identity of this host (this primary) in the store: hostname, pid and a random part (pids are reused). */
  readonly hostId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly runs = new Map<string, ActiveRun>();
  private readonly lock: AsyncLock;
  private readonly logger: ModuleLogger;
  private emitter?: { emit(event: string, payload: unknown): unknown };
  private readonly observers: ((event: string, payload: unknown) => void)[] =
    [];
  /** Every event goes to EventEmitter2 (when the app has it) and to internal observers (metrics). */
  private readonly events: EventSink = {
    emit: (event, payload) => {
      // A listener that throws is the app's bug: it is logged, and never stops or crashes a run.
      try {
        this.emitter?.emit(event, payload);
        for (const observer of this.observers) observer(event, payload);
      } catch (e) {
        const error = toWireError(e);
        this.logger.error(
          `A listener of ${event} threw: ${error.message}`,
          error.stack,
        );
      }
    },
  };
  /** SIGTERM/SIGINT while runs are active: no run starts or is joined after one. */
  private readonly signals: SignalStop;
  /** This host's worker processes, kept between runs for workerIdleMs. */
  private readonly fleet: WorkerFleet;
  /** What planning and starting a run uses. */
  private readonly planDeps: RunPlanDeps;

  constructor(
    @Inject(RESOLVED_OPTIONS)
    private readonly options: ResolvedParallelWorkerOptions,
    @Inject(PARALLEL_WORKER_STORE) private readonly store: CoordinationStore,
    private readonly discovery: DiscoveryService,
  ) {
    this.lock = new AsyncLock(options.lockOptions);
    this.logger = new ModuleLogger(LOG_CONTEXT, options.logging);
    this.fleet = new WorkerFleet(options, this.logger);
    this.planDeps = {
      store,
      options,
      logger: this.logger,
      firstCall: (job, call) => this.firstCall(job, call),
    };
    this.signals = new SignalStop(this.logger, {
      stop: () => this.stop().then(() => this.fleet.close()),
      abandon: () =>
        Promise.all(
          [...this.runs.values()].map(
            (r) => r.engine?.abandon() ?? Promise.resolve(),
          ),
        ).then(() => undefined),
    });
  }

  /** Ends the warm workers (and those of runs still ending, once released); resolves when all exited. */
  dismissWorkers(): Promise<void> {
    return this.fleet.close();
  }

  /** The memory store's warning was logged (once per process). */
  private saidVolatile = false;

  onApplicationBootstrap(): void {
    // EventEmitter2 is an optional peer: found by its shape, never imported.
    const emitter = this.discovery
      .getProviders()
      .find(
        (w) =>
          typeof w.instance?.emitAsync === 'function' &&
          typeof w.instance?.onAny === 'function',
      )?.instance;
    if (emitter && typeof emitter.emit === 'function') this.emitter = emitter;
  }

  observe(observer: (event: string, payload: unknown) => void): void {
    this.observers.push(observer);
  }

  isRunning(job: string): boolean {
    return this.runs.has(job);
  }

  /** The engine of the job's run on this host, once it started. */
  engine(job: string): RunEngine | undefined {
    return this.runs.get(job)?.engine;
  }

  /** Waits for the job's run on this host to resolve (or reject). */
  async settled(job: string): Promise<void> {
    await this.runs.get(job)?.promise.catch(() => undefined);
  }

  /** Runs `def` (or joins its run on this host) and resolves with the summary. */
  async run(def: JobDefinition, options: RunOptions): Promise<RunSummary> {
    const { from, startedBy } = options;
    const params = paramsText(def.name, options.params);
    if (startedBy !== undefined && typeof startedBy !== 'string')
      throw new InvalidParamsError(
        def.name,
        options.params,
        ['startedBy must be a string'],
        `Job "${def.name}" was not started: startedBy must be a string (who or what started the run), got ${show(startedBy)}.`,
      );
    if (this.signals.signal) {
      throw new RunRefusedError(
        def.name,
        `Job "${def.name}" was not started: this process is stopping (${this.signals.signal} received).`,
      );
    }
    const active = this.runs.get(def.name);
    if (active) {
      if (from !== undefined)
        throw new RunRefusedError(
          def.name,
          `Job "${def.name}" is running on this host already; wait for it or stop() it before run('${def.name}', { from }).`,
        );
      if (active.params !== params)
        throw new RunRefusedError(
          def.name,
          PARAMS_DIFFER(def.name, 'this host', params, active.params),
        );
      return active.promise;
    }
    const entry = { params } as ActiveRun;
    entry.promise = this.orchestrate(def, options, entry);
    this.runs.set(def.name, entry);
    this.signals.watch(this.runs.size > 0);
    try {
      return await entry.promise;
    } finally {
      this.runs.delete(def.name);
      this.signals.watch(this.runs.size > 0);
    }
  }

  /**
   * Starts a run of `def` in the background and resolves as soon as the
   * store started it (or joined another host's, started a moment before):
   * `finished` is the run's own promise. Refused at once while the job runs
   * on this host.
   */
  async begin(
    def: JobDefinition,
    options: RunOptions,
  ): Promise<{
    runId: string;
    joined: boolean;
    finished: Promise<RunSummary>;
  }> {
    if (this.runs.has(def.name))
      throw new RunRefusedError(def.name, ACTIVE_HERE(def.name));
    const finished = this.run(def, options);
    const entry = this.runs.get(def.name);
    // run() refused before it began (bad params): its rejection is the answer.
    if (!entry)
      return finished.then((s) => ({
        runId: s.runId,
        joined: false,
        finished,
      }));
    const started = new Promise<{ runId: string; joined: boolean }>(
      (resolve) =>
        (entry.onStart = (runId, joined) => resolve({ runId, joined })),
    );
    const first = await Promise.race([
      started,
      finished.then((s) => ({ runId: s.runId, joined: false })),
    ]);
    return { ...first, finished };
  }

  /** Graceful stop of these jobs (every running one when omitted): resolves when their runs resolved. */
  async stop(names: string[] = [...this.runs.keys()]): Promise<void> {
    await Promise.all(
      names.map(async (name) => {
        const run = this.runs.get(name);
        if (!run) return;
        run.stopRequested = true;
        await run.engine?.stop();
        await run.promise.catch(() => undefined);
      }),
    );
  }

  private async orchestrate(
    def: JobDefinition,
    { from, startedBy, params: given }: RunOptions,
    entry: ActiveRun,
  ): Promise<RunSummary> {
    const startedAt = performance.now();
    await checkParams(def, given, this.options.loaderTimeoutMs);
    // A health indicator that cannot work (a missing table, a role that may not read the lag) says so now.
    await verifyIndicators(this.options.health);
    // What every call of this host sees as ctx.params: the stored text parsed back, frozen.
    const params =
      entry.params === undefined ? undefined : frozen(JSON.parse(entry.params));
    // The job's loader and handler say which app it is: another app's job in the same store is refused, not continued.
    const started = await startOrJoin(this.planDeps, def, {
      runId: randomUUID(),
      from,
      ...(params && { params }),
      declaredBy: declarationOf(def),
      start: {
        ...(entry.params !== undefined && { params: entry.params }),
        ...(startedBy !== undefined && { startedBy }),
        host: this.hostId,
      },
      startedAt,
    });
    const { runId, joined } = started;
    entry.onStart?.(runId, joined);
    // Every host and worker of a run sees the same params: one that would join with others is refused.
    if (joined && started.params !== entry.params)
      throw new RunRefusedError(
        def.name,
        PARAMS_DIFFER(def.name, `run ${runId}`, entry.params, started.params),
      );
    const logger = this.logger;
    if (!this.saidVolatile && forgets(this.store)) {
      this.saidVolatile = true;
      logger.warn(MEMORY_STORE_FORGETS(def.name));
    }
    // Counting may be slow (a COUNT over a big table): it runs beside the start, not before it.
    if (!joined && def.total)
      void recordTotal(this.planDeps, def, runId, params);
    const span = RunSpan.start(def.name, runId, joined);
    const inline = this.options.workers === 0;
    // At info once there is something to hand out (the pool says so): a run with nothing to do stays quiet.
    logger.debug(
      `Job "${def.name}": ${joined ? 'joining' : 'starting'} run ${runId}${inline ? ' inline (workers: 0)' : ''}.`,
    );
    const engine = new RunEngine({
      job: def,
      runId,
      hostId: this.hostId,
      store: this.store.job(def.name),
      options: this.options,
      logger,
      events: this.events,
      lock: this.lock,
      startedAt,
      ...(params && { params }),
      ...(startedBy !== undefined && { startedBy }),
    });
    entry.engine = engine;
    const run: AssignedRun = {
      job: def.name,
      runId,
      ...(params && { params }),
      ...(span && { trace: span.parent }),
    };
    const start = () =>
      engine.start(
        inline
          ? new InlinePool(
              `inline-${process.pid}`,
              this.options.concurrency,
              def,
              run,
              engine,
              this.options.fence.table,
            )
          : new ClusterPool(run, this.options, engine, logger, this.fleet),
      );
    // The loader's own spans (its queries) nest under the run span.
    if (span) span.with(start);
    else start();
    if (entry.stopRequested) void engine.stop();
    const summary = await engine.finished;
    span?.end(summary);
    const line = `Job "${def.name}" ${summary.status}: ${summary.ids} ids in ${summary.ranges.completed} ranges (${summary.ranges.retried} retried, ${summary.ranges.dead} dead) in ${(summary.durationMs / 1000).toFixed(1)} s.`;
    if (summary.status === 'failed')
      throw new RunFailedError(
        summary,
        engine.failureCause === undefined
          ? undefined
          : { cause: engine.failureCause },
      );
    if (
      summary.status === 'completed' &&
      summary.ids === 0 &&
      summary.ranges.completed + summary.ranges.dead === 0
    )
      logger.debug(`Job "${def.name}": nothing new to handle (run ${runId}).`);
    else logger.info(line);
    return summary;
  }

  /**
   * The run's first store call, retried while the store fails, for at most
   * storeConnectTimeoutMs (a call that hangs counts too): then run() rejects
   * with a StoreUnavailableError that says where the store is. A refusal
   * (RunRefusedError) is an answer, not an outage.
   */
  private async firstCall<T>(job: string, call: () => Promise<T>): Promise<T> {
    const timeoutMs = this.options.storeConnectTimeoutMs;
    const deadline = performance.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(
          () => reject(new Error(`no answer after ${timeoutMs} ms`)),
          timeoutMs,
        )),
    );
    // Rejections of `hang` while no race awaits it (between attempts) are seen by the next race, never unhandled.
    hang.catch(() => undefined);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await Promise.race([call(), hang]);
        } catch (e) {
          if (
            e instanceof RunRefusedError ||
            e instanceof ParallelWorkerConfigError
          )
            throw e;
          if (
            performance.now() + 100 >= deadline ||
            (e as Error).message.startsWith('no answer after')
          ) {
            const where = this.store.where ?? 'the coordination store';
            const problem = this.store.problem?.() ?? (e as Error).message;
            throw new StoreUnavailableError(
              job,
              STORE_UNAVAILABLE(job, where, timeoutMs, problem),
              { cause: e },
            );
          }
          await new Promise((r) =>
            setTimeout(
              r,
              Math.min(1000, 50 * 2 ** attempt, deadline - performance.now()),
            ),
          );
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** The app is closing (app.close()): it ends by itself, so a stopped signal is not raised again. */
  closingApp(): void {
    this.signals.appClosing();
    void this.fleet.close();
  }
}

/** State that lives in this process only (`storage: 'memory'`, or a `MemoryStore` given). */
const forgets = (store: CoordinationStore): boolean =>
  store instanceof MemoryStore;
