import {
  type BeforeApplicationShutdown, Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit,
} from '@nestjs/common'
import { DiscoveryService } from '@nestjs/core'
import AsyncLock from 'async-lock'
import cluster from 'node:cluster'
import { randomUUID } from 'node:crypto'
import { ClusterPool } from './cluster/cluster-pool'
import { InlinePool } from './cluster/inline-pool'
import { WorkerRunner } from './cluster/worker-runner'
import { RunFailedError } from './errors/run-failed.error'
import { UnknownJobError } from './errors/unknown-job.error'
import { type JobDefinition, JobRegistry } from './job.registry'
import type { ResolvedParallelWorkerOptions } from './interfaces/parallel-worker-options.interface'
import type { ID } from './interfaces/range.interface'
import type { JobStatus, RunSummary } from './interfaces/run-summary.interface'
import { ENV_CONCURRENCY, ENV_JOB, ENV_RUN_ID, ENV_WORKER_ID, LOG_CONTEXT } from './parallel-worker.constants'
import { ParallelWorkerExplorer } from './parallel-worker.explorer'
import { ModuleLogger } from './parallel-worker.logger'
import * as m from './parallel-worker.messages'
import { PARALLEL_WORKER_STORE, RESOLVED_OPTIONS } from './parallel-worker.providers'
import { RunEngine, type EventSink } from './run/run-engine'
import { RateSampler } from './run/rate-sampler'
import { silenceSchedulerInWorker } from './run/scheduler-guard'
import type { CoordinationStore } from './store/coordination-store.interface'

/** Options of `ParallelWorker.run()`. */
export interface RunOptions {
  /** Move the cursor before the run: `null` starts over from the first row. Omit to continue from the stored cursor. */
  from?: ID | null
}

interface ActiveRun {
  engine?: RunEngine
  promise: Promise<RunSummary>
  /** stop() came before the engine existed (the run was still starting). */
  stopRequested?: boolean
}

/**
 * Runs jobs: in the primary `run()` forks the workers and hands out ranges;
 * in a worker `run()` serves ranges until the primary drains it.
 */
@Injectable()
export class ParallelWorker implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  /** Identity of this host (this primary) in the store. */
  readonly hostId = `h-${randomUUID()}`
  private readonly runs = new Map<string, ActiveRun>()
  private readonly lock: AsyncLock
  private readonly logger: ModuleLogger
  private worker?: WorkerRunner
  private emitter?: { emit(event: string, payload: unknown): unknown }
  private readonly observers: ((event: string, payload: unknown) => void)[] = []
  /** Every event goes to EventEmitter2 (when the app has it) and to internal observers (metrics). */
  private readonly events: EventSink = {
    emit: (event, payload) => {
      // A listener that throws is the app's bug: it is logged, and never stops or crashes a run.
      try {
        this.emitter?.emit(event, payload)
        for (const observer of this.observers) observer(event, payload)
      } catch (e) {
        this.logger.error(`A listener of ${event} threw: ${(e as Error).message}`, (e as Error).stack)
      }
    },
  }
  private signals = 0
  private readonly rates = new RateSampler()

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedParallelWorkerOptions,
    @Inject(PARALLEL_WORKER_STORE) private readonly store: CoordinationStore,
    private readonly registry: JobRegistry,
    private readonly discovery: DiscoveryService,
    private readonly explorer: ParallelWorkerExplorer,
  ) {
    this.lock = new AsyncLock(options.lockOptions)
    this.logger = new ModuleLogger(LOG_CONTEXT, options.logging)
  }

  /** True in a worker process forked by this module; main.ts uses it to pick its role. */
  static isWorker(): boolean {
    return cluster.isWorker && typeof process.env[ENV_JOB] === 'string'
  }

  onModuleInit(): void {
    if (ParallelWorker.isWorker()) silenceSchedulerInWorker(this.discovery)
  }

  onApplicationBootstrap(): void {
    // EventEmitter2 is an optional peer: found by its shape, never imported.
    const emitter = this.discovery.getProviders()
      .find(w => typeof w.instance?.emitAsync === 'function' && typeof w.instance?.onAny === 'function')?.instance
    if (emitter && typeof emitter.emit === 'function') this.emitter = emitter
  }

  /**
   * Primary: runs `job` to the end over all workers (and all hosts sharing the
   * store) and resolves with the summary; rejects with `RunFailedError` when
   * the run fails. Worker: serves the job it was forked for until drained.
   */
  async run(job?: string, options: RunOptions = {}): Promise<RunSummary> {
    if (ParallelWorker.isWorker()) return this.serve(job)
    const def = this.job(job)
    const active = this.runs.get(def.name)
    if (active) {
      if (options.from !== undefined) throw new Error(`Job "${def.name}" is running on this host already; wait for it or stop() it before run('${def.name}', { from }).`)
      return active.promise
    }
    const entry = {} as ActiveRun
    entry.promise = this.orchestrate(def, options, entry)
    this.runs.set(def.name, entry)
    this.watchSignals()
    try {
      return await entry.promise
    } finally {
      this.runs.delete(def.name)
      this.watchSignals()
    }
  }

  /** The names of the jobs this app declares. */
  jobs(): string[] {
    this.explorer.explore()
    return this.registry.names()
  }

  /** @internal Lets the metrics module see every event, with or without EventEmitter2. */
  observe(observer: (event: string, payload: unknown) => void): void {
    this.observers.push(observer)
  }

  /** Progress of a job (all hosts), as the store and this host see it. */
  async status(job?: string): Promise<JobStatus> {
    const name = this.job(job).name
    const s = await this.store.state(name)
    const local = this.runs.get(name)
    let state: JobStatus['state'] = s.state
    if (s.state === 'running') {
      if (local?.engine?.stopping) state = 'stopping'
      else if (s.control === 'pause') state = 'paused'
      // In memory after stop(), or a run whose hosts all left: the next run() resumes it.
      else if (!local && s.leased === 0) state = 'stopped'
    }
    const ids = s.counters.ids
    const rate = Math.round(this.rates.rate(name, s))
    const total = s.total
    return {
      job: name, state, runId: s.runId, cursor: s.cursor,
      ids: { done: ids },
      ranges: { done: s.counters.completed, leased: s.leased, retrying: s.retrying, dead: s.dead },
      rate,
      ...(total !== undefined ? {
        total,
        percent: total > 0 ? Math.min(100, (ids / total) * 100) : 100,
        ...(rate > 0 && state === 'running' ? { etaMs: Math.round((Math.max(0, total - ids) / rate) * 1000) } : {}),
      } : {}),
      ...(s.error ? { error: s.error } : {}),
      startedAt: s.startedAt,
    }
  }

  /** Pauses the job's active run on every host (within a second): leases are kept, nothing new is handed out. */
  async pause(job?: string): Promise<void> {
    await this.control(job, 'pause')
  }

  /** Resumes a paused run on every host. */
  async resume(job?: string): Promise<void> {
    await this.control(job, 'resume')
  }

  /**
   * Cancels the job's active run on every host: each stops as on `stop()`
   * and its `run()` resolves `stopped`. The cursor stays; released ranges are
   * handed out by the next run.
   */
  async cancel(job?: string): Promise<void> {
    await this.control(job, 'cancel')
    const name = this.job(job).name
    await this.runs.get(name)?.promise.catch(() => undefined)
  }

  /** Moves the job's cursor back to the start (the next run handles every row); refused while a run is active. */
  async reset(job?: string): Promise<void> {
    const name = this.job(job).name
    if (this.runs.has(name)) throw new Error(`Job "${name}" is running on this host; cancel() it or wait for it before reset().`)
    await this.store.reset(name)
    this.logger.info(`Job "${name}": reset; the next run starts from the first row.`)
  }

  private async control(job: string | undefined, action: 'pause' | 'resume' | 'cancel'): Promise<void> {
    const name = this.job(job).name
    const runId = await this.store.control(name, action)
    if (!runId) throw new Error(`Job "${name}" has no active run to ${action}.`)
    this.logger.info(`Job "${name}": ${action} requested for run ${runId}.`)
    // This host obeys at once; the others within a second.
    await this.runs.get(name)?.engine?.followControl()
  }

  /** Graceful stop of `job` (of every running job when omitted): resolves when the run resolved as stopped. */
  async stop(job?: string): Promise<void> {
    const names = job === undefined ? [...this.runs.keys()] : [this.job(job).name]
    await Promise.all(names.map(async name => {
      const run = this.runs.get(name)
      if (!run) return
      run.stopRequested = true
      await run.engine?.stop()
      await run.promise.catch(() => undefined)
    }))
  }

  /**
   * Hands the job's dead letters out again (attempt 1): at once when the job
   * is running, else in its next run. Resolves with how many were requeued.
   */
  async retryDead(job?: string): Promise<number> {
    const name = this.job(job).name
    const moved = await this.store.retryDead(name)
    if (moved) this.logger.info(`Job "${name}": ${moved} dead-lettered ranges will be handed out again.`)
    this.runs.get(name)?.engine?.wake()
    return moved
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.worker) await this.worker.idle(this.options.shutdownTimeoutMs)
    else await this.stop()
  }

  onApplicationShutdown(): void {
    // A drained worker ends by itself once its IPC channel is closed.
    if (ParallelWorker.isWorker() && process.connected) process.disconnect?.()
  }

  private job(job: string | undefined): JobDefinition {
    this.explorer.explore()
    const names = this.registry.names()
    if (job === undefined) {
      if (names.length === 1) return this.registry.get(names[0]) as JobDefinition
      throw new UnknownJobError(job, names.length === 0 ? m.NO_JOBS() : m.JOB_REQUIRED(names))
    }
    const def = this.registry.get(job)
    if (!def) throw new UnknownJobError(job, m.UNKNOWN_JOB(job, names))
    return def
  }

  private async orchestrate(def: JobDefinition, options: RunOptions, entry: ActiveRun): Promise<RunSummary> {
    const startedAt = Date.now()
    const { runId, joined } = await this.store.startRun(def.name, randomUUID(), options.from)
    const logger = this.logger
    // Counting may be slow (a COUNT over a big table): it runs beside the start, not before it.
    if (!joined && def.total) void this.recordTotal(def, runId)
    const inline = this.options.workers === 0
    logger.info(`Job "${def.name}": ${joined ? 'joining' : 'starting'} run ${runId} with ${inline ? 'no workers (inline)' : `${this.options.workers} workers`}.`)
    const engine = new RunEngine({
      job: def, runId, hostId: this.hostId, store: this.store, options: this.options, logger, events: this.events, lock: this.lock, startedAt,
    })
    entry.engine = engine
    engine.start(inline
      ? new InlinePool(`inline-${this.hostId.slice(2, 10)}`, this.options.concurrency, def, runId, engine)
      : new ClusterPool(def.name, runId, this.options, engine, logger))
    if (entry.stopRequested) void engine.stop()
    const summary = await engine.finished
    const line = `Job "${def.name}" ${summary.status}: ${summary.ids} ids in ${summary.ranges.completed} ranges (${summary.ranges.retried} retried, ${summary.ranges.dead} dead) in ${(summary.durationMs / 1000).toFixed(1)} s.`
    if (summary.status === 'failed') throw new RunFailedError(summary)
    logger.info(line)
    return summary
  }

  /** Runs the job's @RangeTotal once per run (null or undefined: no total); a failure only costs percent and ETA. */
  private async recordTotal(def: JobDefinition, runId: string): Promise<void> {
    try {
      const value = await def.total?.call({ job: def.name, runId })
      if (value === undefined || value === null) return
      const total = Number(value)
      if (!Number.isFinite(total) || total < 0) throw new Error(`it returned ${m.show(value)}, not a count`)
      await this.store.setTotal(def.name, runId, total)
    } catch (e) {
      this.logger.warn(`Job "${def.name}": ${def.total?.name} (@RangeTotal) failed: ${(e as Error).message}; status() will have no percent or ETA.`)
    }
  }

  private async serve(job: string | undefined): Promise<RunSummary> {
    const name = process.env[ENV_JOB] as string
    const runId = process.env[ENV_RUN_ID] as string
    const startedAt = Date.now()
    const share = (ids: number, ranges: number, status: RunSummary['status']): RunSummary => ({
      job: name, runId, status, ids, ranges: { completed: ranges, retried: 0, dead: 0 }, workers: { started: 0, restarted: 0 },
      durationMs: Date.now() - startedAt, host: { ids, ranges },
    })
    // A main.ts that runs several jobs in turn: this worker serves only its own and lets the others pass.
    if (job !== undefined && job !== name) return share(0, 0, 'completed')
    if (this.worker) throw new Error(`Worker ${process.env[ENV_WORKER_ID]} is serving job "${name}" already; call run() once per worker.`)
    // The primary's concurrency rules (it counts on it to tell which ranges may have started).
    const concurrency = Number(process.env[ENV_CONCURRENCY]) || this.options.concurrency
    this.worker = new WorkerRunner(this.job(name), runId, process.env[ENV_WORKER_ID] as string, concurrency, this.logger)
    const result = await this.worker.serve()
    return share(result.ids, result.ranges, result.drained ? 'completed' : 'stopped')
  }

  /** SIGTERM/SIGINT stop the runs gracefully; a second one exits at once (leases released first). */
  private watchSignals(): void {
    const active = this.runs.size > 0
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.off(signal, this.onSignal)
      if (active) process.on(signal, this.onSignal)
    }
    if (!active) this.signals = 0
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (++this.signals === 1) {
      this.logger.warn(`${signal}: stopping gracefully (a second ${signal} exits at once).`)
      void this.stop()
      return
    }
    this.logger.warn(`${signal} again: exiting now.`)
    void Promise.race([
      Promise.all([...this.runs.values()].map(r => r.engine?.abandon())),
      new Promise(r => setTimeout(r, 2000)),
    ]).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
}
