import AsyncLock from 'async-lock'
import type { WireResult } from '../cluster/ipc.messages'
import type { PoolListener, WorkerPool, WorkerSlot } from '../cluster/worker-pool.interface'
import type { JobDefinition } from '../job.registry'
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface'
import type { RunStatus, RunSummary } from '../interfaces/run-summary.interface'
import { BeforeStopEvent, ParallelWorkerEvent, RunCompletedEvent, WorkerExitedEvent } from '../parallel-worker.events'
import type { ModuleLogger } from '../parallel-worker.logger'
import type { ID } from '../interfaces/range.interface'
import type { CommitResult, CoordinationStore, Lease, StoredRange } from '../store/coordination-store.interface'
import { retrying } from './backoff'
import { describeLease, toWire } from './lease-format'
import { type Loaded, loadRanges, type LoaderCall, RunFailure } from './loader-call'
import { RangeRecorder } from './range-recorder'
import { RangeSizer } from './range-sizer'
import { Throttle } from './throttle'

export interface EventSink {
  emit(event: string, payload: unknown): void
}

export interface RunEngineDeps {
  job: JobDefinition
  runId: string
  hostId: string
  store: CoordinationStore
  options: ResolvedParallelWorkerOptions
  logger: ModuleLogger
  events: EventSink
  lock: AsyncLock
  startedAt: number
}

interface InFlight {
  lease: Lease
  slot: WorkerSlot
  lost: boolean
  /** When its handler started, as far as this host can tell; undefined while it waits in the worker's backlog. */
  startedAt?: number
  /** Failed for running past rangeTimeoutMs; kept only to hold the worker's capacity until it answers or is killed. */
  timedOut: boolean
  /** How long the handler ran, once it answered. */
  ms?: number
}

/** Commits in flight at once while loading ahead (each one round trip to Redis). */
const MAX_PIPELINE = 16
/** Consecutive loads committed together, while loading them takes no longer than BATCH_MS. */
const MAX_BATCH = 64
const BATCH_MS = 8

/**
 * Until its first worker is ready (forking and bootstrapping the app takes a
 * few hundred ms) a host goes on calling the loader, up to about this many
 * ids, without committing: the workers then start on loads already made, and
 * no lease is taken that another host could have used.
 */
const PRELOAD_IDS = 50_000
/** And at most this many ranges (a loader may return ranges without ids). */
const PRELOAD_RANGES = 5_000

/** How often a host looks for pause, resume and cancel in the store: every host obeys within a second. */
const CONTROL_POLL_MS = 500

/** A worker's backlog holds about this much work (by the handlers' recent time per range), so it never waits a round trip for its next range. */
const BACKLOG_MS = 10
/** And at most this many ranges, or ids. */
const MAX_BACKLOG = 64
const MAX_BACKLOG_IDS = 10_000

/** How long a worker gets to answer after its range timed out before it is killed as unresponsive. */
const UNRESPONSIVE_GRACE_MS = 5000

const countIds = (ranges: StoredRange[]): number => ranges.reduce((n, r) => n + r.ids.length, 0)

/**
 * One run of one job on this host: claims and loads ranges ahead of the
 * workers, hands them out, records results, heartbeats its leases, and ends
 * the run as completed, stopped or failed.
 */
export class RunEngine implements PoolListener {
  private readonly ready: Lease[] = []
  private readonly inflight = new Map<number, InFlight>()
  /** Each worker's unanswered ranges in the order they were sent: it starts them in that order. */
  private readonly hands = new Map<WorkerSlot, InFlight[]>()
  /** Recent handler time per range (moving average), for the size of the workers' backlog. */
  private msPerRange?: number
  /** No worker was ready yet. */
  private startingUp = true
  /** Loads made while the workers start, not committed (no lease): consecutive, the first from its `from`. */
  private preloaded: (Loaded & { from: ID | null })[] = []
  private preloadedIds = 0
  private preloadedRanges = 0
  private state: 'running' | 'stopping' | 'ending' = 'running'
  private filling = false
  private refill = false
  /** The cursor to load after, while this host knows it; undefined: claim first. */
  private cursor?: { value: ID | null }
  /** Completed ranges waiting to be recorded in one store call. */
  private completing: InFlight[] = []
  private fillTimer?: NodeJS.Timeout
  private readonly heartbeatTimer: NodeJS.Timeout
  private readonly controlTimer: NodeJS.Timeout
  /** Paused from any host or the CLI: leases are kept (heartbeats go on), nothing is handed out. */
  private paused = false
  /** Workers holding a range that timed out: they get nothing new before they answer or are killed. */
  private readonly doomed = new Set<WorkerSlot>()
  /** When this host last renewed its leases (its clock): past leaseMs without a renewal, its handlers' signals abort. */
  private renewedAt = Date.now()
  private readonly watchdog?: NodeJS.Timeout
  private pending = 0
  private readonly recorder: RangeRecorder
  private pool!: WorkerPool
  private resolve!: (summary: RunSummary) => void
  private stopWaiter?: () => void
  readonly finished: Promise<RunSummary>

  private readonly loaderCall: LoaderCall
  private readonly sizer: RangeSizer
  private readonly throttle: Throttle

  constructor(private readonly d: RunEngineDeps) {
    this.finished = new Promise(resolve => (this.resolve = resolve))
    this.recorder = new RangeRecorder(d)
    this.sizer = new RangeSizer(d.options)
    this.throttle = new Throttle(d.options.throttle, { job: d.job.name, runId: d.runId }, d.logger, () => {
      this.dispatch()
      this.fill()
    })
    this.loaderCall = { ...d, running: () => this.state === 'running', limit: () => this.sizer.limit }
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), d.options.heartbeatMs)
    this.controlTimer = setInterval(() => void this.followControl(), CONTROL_POLL_MS)
    const timeout = d.options.rangeTimeoutMs
    if (timeout > 0) this.watchdog = setInterval(() => this.checkTimeouts(), Math.max(10, Math.min(1000, timeout / 4)))
  }

  start(pool: WorkerPool): void {
    this.pool = pool
    pool.start()
    this.fill()
  }

  // ---- hand-out ----

  /**
   * How many ranges a worker may hold: `concurrency` running plus a backlog
   * of about BACKLOG_MS of work (none until handlers were timed, none for
   * handlers slower than that, none inline).
   */
  private depth(slot: WorkerSlot): number {
    if (!slot.backlog || this.msPerRange === undefined) return slot.capacity
    const backlog = Math.floor((slot.capacity * BACKLOG_MS) / Math.max(this.msPerRange, 0.001))
    return slot.capacity + Math.min(MAX_BACKLOG, Math.floor(MAX_BACKLOG_IDS / this.sizer.limit), backlog)
  }

  private freeCapacity(): number {
    let free = 0
    for (const slot of this.pool.slots()) if (slot.ready) free += Math.max(0, this.depth(slot) - slot.active)
    return free
  }

  /** The slot's unanswered ranges, oldest first (answered ones are dropped here, not one by one). */
  private hand(slot: WorkerSlot): InFlight[] {
    const hand = (this.hands.get(slot) ?? []).filter(f => this.inflight.get(f.lease.token) === f)
    this.hands.set(slot, hand)
    return hand
  }

  private dispatch(): void {
    if (this.state !== 'running' || !this.handingOut()) return
    for (const slot of this.pool.slots()) {
      const depth = this.depth(slot)
      const free = depth - slot.active
      // A worker is topped up once half of what it may hold is free: fewer, larger IPC messages.
      if (!slot.ready || free < Math.ceil(depth / 2) || this.ready.length === 0 || this.doomed.has(slot)) continue
      const batch = this.ready.splice(0, free)
      const now = Date.now()
      const hand = this.hands.get(slot) ?? []
      this.hands.set(slot, hand)
      for (const lease of batch) {
        // The worker runs its oldest `concurrency` ranges; later ones wait in its backlog (their clock starts later).
        const f: InFlight = { lease, slot, lost: false, startedAt: slot.active++ < slot.capacity ? now : undefined, timedOut: false }
        hand.push(f)
        this.inflight.set(lease.token, f)
      }
      if (slot.send(batch.map(toWire))) continue
      // The worker is gone (its exit follows): these never reached it, so they stay this host's to hand out.
      slot.active -= batch.length
      for (const lease of batch) this.inflight.delete(lease.token)
      this.ready.unshift(...batch)
    }
  }

  private fill(delayMs = 0): void {
    if (delayMs > 0) {
      if (!this.fillTimer) this.fillTimer = setTimeout(() => ((this.fillTimer = undefined), this.fill()), delayMs)
      return
    }
    if (this.state !== 'running') return
    // A call while the loop runs is not dropped: the loop runs again once it ends.
    if (this.filling) {
      this.refill = true
      return
    }
    this.filling = true
    this.refill = false
    void this.fillLoop().finally(() => {
      this.filling = false
      if (this.refill) this.fill()
    })
  }

  /**
   * Keeps `prefetch` ranges ready beyond what the workers can take. Claims
   * only when it does not know the cursor or the store says older work is
   * due; otherwise loads from the last committed cursor, commits quick
   * consecutive loads together and pipelines up to MAX_PIPELINE commits.
   * Each commit is a compare-and-set on its own, so one refused because
   * another host moved the cursor hands out nothing; the loop then claims to
   * learn the cursor again.
   */
  private async fillLoop(): Promise<void> {
    const { options, logger, job } = this.d
    const commits: { result: Promise<CommitResult>; ranges: number }[] = []
    let committing = 0
    const settleOne = async () => {
      const { result, ranges } = commits.shift() as (typeof commits)[number]
      committing -= ranges
      const r = await result
      if (r.type === 'leased') {
        // The run began to end while this commit was in flight: give the leases back at once.
        if (this.state !== 'running') return this.releaseLater(r.leases)
        this.ready.push(...r.leases)
        if (r.due) this.cursor = undefined
        this.dispatch()
      } else if (r.type === 'conflict') {
        logger.debug(`Job "${job.name}": another host moved the cursor to ${r.cursor}; reloading from there.`)
        this.cursor = undefined
      }
    }
    const room = () => this.freeCapacity() + options.prefetch - this.ready.length - committing
    const settleAll = async () => {
      while (commits.length) await settleOne()
    }
    try {
      while (this.state === 'running' && this.handingOut()) {
        if (room() <= 0) {
          if (!this.canPreload()) break
          // Leases already committed go to `ready` first: renewed by heartbeats, sent as soon as a worker is ready.
          await settleAll()
          // Settling may have shown another host moved the cursor (or older work is due): claim first then.
          if (!this.canPreload()) continue
          if (!(await this.preload())) return
          continue
        }
        if (this.cursor === undefined) {
          await settleAll()
          if (this.state !== 'running' || !(await this.claim())) return settleAll()
          continue
        }
        const from = this.cursor.value
        const max = await this.permits(room())
        if (max === 0) return settleAll()
        const loaded = this.takePreloaded(from, max) ?? (await this.loadBatch(from, max))
        if (!loaded) return settleAll()
        // An empty commit after the ranges marks loading exhausted at the cursor they reach.
        const batches = loaded.ranges.length ? [loaded.ranges] : []
        if (loaded.exhausted) batches.push([])
        for (const ranges of batches) {
          const expected = ranges.length ? from : loaded.cursor
          const result = retrying(() => this.d.store.commit(job.name, this.d.hostId, expected, ranges, options.leaseMs), logger, `commit for job "${job.name}"`)
          // Awaited in order by settleOne; this only keeps a failure from surfacing twice.
          result.catch(() => undefined)
          commits.push({ result, ranges: ranges.length })
          committing += ranges.length
        }
        this.cursor = loaded.exhausted ? undefined : { value: loaded.cursor }
        if (commits.length >= MAX_PIPELINE) await settleOne()
      }
      await settleAll()
      // Settling may have made room (a refused commit frees its ranges' place): go round again.
      if (this.state === 'running' && room() > 0 && this.handingOut()) this.refill = true
    } catch (e) {
      // Bad loader output fails the run everywhere; a store that stays unreachable fails only this host.
      void this.end('failed', (e as Error).message, e instanceof RunFailure ? e.cause : e, e instanceof RunFailure)
      for (const { result } of commits.splice(0)) {
        const r = await result.catch(() => undefined)
        if (r?.type === 'leased') this.releaseLater(r.leases)
      }
    }
  }

  /** While no worker is ready, the loader may run ahead (not under `maxRangesPerSecond`, which paces the loader). */
  private canPreload(): boolean {
    const last = this.preloaded[this.preloaded.length - 1]
    return this.startingUp && this.cursor !== undefined && !last?.exhausted && this.d.options.maxRangesPerSecond <= 0 &&
      this.preloadedIds < PRELOAD_IDS && this.preloadedRanges < PRELOAD_RANGES
  }

  /** One more batch of loads after the last one, kept uncommitted; false when the run ended meanwhile. */
  private async preload(): Promise<boolean> {
    const last = this.preloaded[this.preloaded.length - 1]
    const from = last ? last.cursor : (this.cursor as { value: ID | null }).value
    const loaded = await this.loadBatch(from, MAX_BATCH)
    if (!loaded) return false
    this.preloaded.push({ ...loaded, from })
    this.preloadedIds += countIds(loaded.ranges)
    this.preloadedRanges += loaded.ranges.length
    return true
  }

  /** Up to `max` preloaded ranges when they start at `from` (the cursor); otherwise they are stale and dropped. */
  private takePreloaded(from: ID | null, max: number): Loaded | undefined {
    const head = this.preloaded[0]
    if (!head) return undefined
    if (JSON.stringify(head.from) !== JSON.stringify(from)) {
      this.preloaded = []
      this.preloadedIds = this.preloadedRanges = 0
      return undefined
    }
    const ranges = head.ranges.length <= max ? head.ranges : head.ranges.splice(0, max)
    this.preloadedIds -= countIds(ranges)
    this.preloadedRanges -= ranges.length
    if (ranges === head.ranges) {
      this.preloaded.shift()
      return head
    }
    head.from = ranges[ranges.length - 1].lastId
    return { ranges, cursor: head.from, exhausted: false }
  }

  /** How many ranges `maxRangesPerSecond` lets this host load now (0: the loop waits for the next second). */
  private async permits(wanted: number): Promise<number> {
    const { job, store, options, logger } = this.d
    if (options.maxRangesPerSecond <= 0) return wanted
    const ask = Math.min(wanted, MAX_BATCH)
    const { granted, waitMs } = await retrying(() => store.takePermits(job.name, ask, options.maxRangesPerSecond), logger, `permits for job "${job.name}"`)
    if (granted === 0) this.fill(waitMs)
    return granted
  }

  /** One claim; false when the loop should stop (the run ended, or nothing to do for now). */
  private async claim(): Promise<boolean> {
    const { job, store, options, hostId, logger } = this.d
    const claim = await retrying(() => store.claim(job.name, hostId, options.leaseMs), logger, `claim for job "${job.name}"`)
    if (this.state !== 'running') {
      this.releaseLater(claim.type === 'lease' ? [claim.lease] : [])
      return false
    }
    switch (claim.type) {
      case 'lease':
        if (claim.reason === 'expired') logger.warn(`Job "${job.name}": ${describeLease(claim.lease)} was re-leased after its lease expired.`)
        this.ready.push(claim.lease)
        this.dispatch()
        return true
      case 'load':
        this.cursor = { value: claim.cursor }
        return true
      case 'wait':
        this.fill(claim.retryInMs)
        return false
      case 'done':
        if (this.inflight.size === 0 && this.ready.length === 0) void this.end('completed')
        return false
      case 'cancelled':
        logger.warn(`Job "${job.name}": the run was cancelled; stopping.`)
        void this.end('stopped')
        return false
      default:
        void this.end('failed', claim.error)
        return false
    }
  }

  /**
   * Loads up to `max` consecutive ranges after `from` while loading stays
   * quick (a slow loader commits range by range, so workers never wait on a
   * batch). Undefined when the run ended meanwhile: nothing loaded is committed.
   */
  private loadBatch(from: ID | null, max: number): Promise<Loaded | undefined> {
    const started = performance.now()
    return loadRanges(this.loaderCall, from, Math.min(max, MAX_BATCH), () => performance.now() - started <= BATCH_MS && this.state === 'running')
  }

  // ---- results ----

  slotReady(): void {
    this.startingUp = false
    this.dispatch()
    this.fill()
  }

  results(slot: WorkerSlot, results: WireResult[]): void {
    const unstarted: number[] = []
    for (const result of results) {
      const f = this.inflight.get(result.token)
      if (!f) continue
      this.inflight.delete(result.token)
      slot.active--
      if (f.timedOut) continue
      if (!result.ok) {
        // Aborted before it started (its lease may be lost, or the store unreachable): no attempt is counted.
        if (result.notStarted) unstarted.push(f.lease.token)
        else this.track(this.recorder.failed(f.lease, result.error))
        continue
      }
      this.sizer.observe(f.lease.range.ids.length, result.ms)
      this.msPerRange = this.msPerRange === undefined ? result.ms : this.msPerRange * 0.9 + result.ms * 0.1
      f.ms = result.ms
      // Completions of one turn of the event loop are recorded in one store call.
      if (this.completing.push(f) === 1) setImmediate(() => this.track(this.recorder.complete(this.completing.splice(0).map(c => ({ lease: c.lease, workerId: c.slot.id, ms: c.ms })))))
    }
    if (unstarted.length) this.track(this.release(unstarted))
    // The answered ranges' places went to the next ones in the worker's backlog: their clocks start now.
    const hand = this.hand(slot)
    const now = Date.now()
    for (let i = 0; i < Math.min(slot.capacity, hand.length); i++) hand[i].startedAt ??= now
    this.dispatch()
    this.fill()
  }

  slotExited(slot: WorkerSlot, code: number | null, signal: string | null, expected: boolean): void {
    const { job, runId } = this.d
    if (slot.pid !== process.pid) {
      this.d.events.emit(ParallelWorkerEvent.WorkerExited, new WorkerExitedEvent(job.name, runId, slot.id, slot.pid, code, signal))
    }
    this.doomed.delete(slot)
    const how = signal ? `signal ${signal}` : `code ${code}`
    // Only the oldest `concurrency` unanswered ranges may have started (the worker starts its backlog only
    // after sending the results that made room): they count an attempt; the rest go back untouched.
    const hand = this.hand(slot)
    this.hands.delete(slot)
    const unstarted: Lease[] = []
    hand.forEach((f, i) => {
      this.inflight.delete(f.lease.token)
      if (f.timedOut) return
      if (i >= slot.capacity) return void unstarted.push(f.lease)
      this.d.logger.warn(`Job "${job.name}": worker ${slot.id} (pid ${slot.pid}) exited with ${how} during ${describeLease(f.lease)}; handing it out again.`)
      this.track(this.recorder.failed(f.lease, { message: `worker ${slot.id} (pid ${slot.pid}) exited with ${how} while handling the range` }, 0))
    })
    if (unstarted.length) {
      this.d.logger.warn(`Job "${job.name}": worker ${slot.id} (pid ${slot.pid}) exited with ${how} holding ${unstarted.length} ranges it had not started; handing them out again.`)
      this.track(this.release(unstarted.map(l => l.token)))
    }
    if (!expected) this.fill()
  }

  forked(restart: boolean): void {
    void this.d.store.countWorkers(this.d.job.name, this.d.runId, restart ? 0 : 1, restart ? 1 : 0).catch(() => undefined)
  }

  fatal(reason: string): void {
    void this.end('failed', reason)
  }

  /** Store writes in flight; the run ends only after they land. */
  private track(p: Promise<void>): void {
    this.pending++
    void p.catch(e => this.d.logger.error(`Job "${this.d.job.name}": ${(e as Error).message}`)).finally(() => {
      this.pending--
      this.stopWaiter?.()
      this.fill()
    })
  }

  private handingOut(): boolean {
    return !this.paused && this.throttle.open()
  }

  /** Obeys pause, resume and cancel, whichever host or CLI asked for them. */
  async followControl(): Promise<void> {
    const { job, store, runId, logger } = this.d
    if (this.state !== 'running') return
    const s = await store.state(job.name).catch(() => undefined)
    if (!s || this.state !== 'running') return
    if (s.runId !== runId || s.state === 'stopped') {
      logger.warn(`Job "${job.name}": run ${runId} was cancelled; stopping.`)
      void this.end('stopped')
    } else if (s.control === 'pause' && !this.paused) {
      this.paused = true
      logger.info(`Job "${job.name}": paused; ${this.inflight.size} ranges in flight finish, nothing new is handed out.`)
    } else if (s.control === 'run' && this.paused) {
      this.paused = false
      logger.info(`Job "${job.name}": resumed.`)
      this.dispatch()
      this.fill()
    }
  }

  /** Fails ranges past rangeTimeoutMs (their signal aborts) and kills workers that stay unresponsive after that. */
  private checkTimeouts(): void {
    const { rangeTimeoutMs } = this.d.options
    const now = Date.now()
    for (const [token, f] of this.inflight) {
      if (f.startedAt === undefined) continue
      const ran = now - f.startedAt
      if (!f.timedOut && ran > rangeTimeoutMs) {
        f.timedOut = true
        f.slot.abort([token], 'range timeout')
        if (f.slot.pid !== process.pid) this.doomed.add(f.slot)
        this.track(this.recorder.failed(f.lease, { message: `the handler ran past rangeTimeoutMs (${rangeTimeoutMs} ms)` }))
      } else if (f.timedOut && ran > rangeTimeoutMs + Math.min(UNRESPONSIVE_GRACE_MS, rangeTimeoutMs)) {
        if (f.slot.pid === process.pid) {
          // Inline handlers cannot be killed: stop waiting for this one (its range was failed and goes out again).
          this.inflight.delete(token)
          f.slot.active--
          this.d.logger.warn(`Job "${this.d.job.name}": the inline handler of ${describeLease(f.lease)} ignores its aborted signal ${ran} ms in; no longer waiting for it.`)
          this.fill()
        } else if (f.slot.kill()) {
          this.d.logger.warn(`Job "${this.d.job.name}": worker ${f.slot.id} (pid ${f.slot.pid}) is unresponsive ${ran} ms into ${describeLease(f.lease)}; killing it.`)
        }
      }
    }
  }

  private async heartbeat(): Promise<void> {
    const { job, store, hostId, options } = this.d
    const tokens = [...this.ready.map(l => l.token), ...[...this.inflight.values()].filter(f => !f.timedOut).map(f => f.lease.token)]
    if (tokens.length === 0) return
    try {
      const lost = new Set(await store.heartbeat(job.name, hostId, tokens, options.leaseMs))
      this.renewedAt = Date.now()
      if (lost.size === 0) return
      for (let i = this.ready.length - 1; i >= 0; i--) if (lost.has(this.ready[i].token)) this.ready.splice(i, 1)
      for (const token of lost) {
        const f = this.inflight.get(token)
        if (!f || f.lost) continue
        f.lost = true
        f.slot.abort([token], 'lease lost')
        this.d.logger.warn(`Job "${job.name}": the lease of ${describeLease(f.lease)} was lost; its handler's signal is aborted.`)
      }
    } catch (e) {
      this.d.logger.warn(`Job "${job.name}": heartbeat failed (${(e as Error).message}); retrying at the next beat.`)
      // Past leaseMs without a renewal another host may take these ranges over: their handlers must stop writing.
      if (Date.now() - this.renewedAt < options.leaseMs) return
      for (const [token, f] of this.inflight) {
        if (f.lost || f.timedOut) continue
        f.lost = true
        f.slot.abort([token], 'lease may be lost: the coordination store did not answer')
      }
    }
  }

  // ---- end of run ----

  /** Graceful stop: no more hand-outs, in-flight ranges get `shutdownTimeoutMs` to finish, the rest are released. */
  stop(): Promise<RunSummary> {
    void this.end('stopped')
    return this.finished
  }

  /** Something changed in the store (e.g. dead letters requeued): look for work now. */
  wake(): void {
    this.fill()
  }

  get stopping(): boolean {
    return this.state === 'stopping'
  }

  /** Forced exit: give every lease back at once and kill the workers. */
  async abandon(): Promise<void> {
    const tokens = [...this.ready.splice(0).map(l => l.token), ...this.inflight.keys()]
    this.inflight.clear()
    this.pool.killAll()
    if (tokens.length) await this.d.store.release(this.d.job.name, this.d.hostId, tokens)
  }

  /** Gives leases back at the same attempt, retrying through a store outage. */
  private release(tokens: number[]): Promise<void> {
    const { job, store, hostId, logger } = this.d
    return tokens.length ? retrying(() => store.release(job.name, hostId, tokens), logger, `release for job "${job.name}"`) : Promise.resolve()
  }

  private releaseLater(leases: Lease[]): void {
    void this.release(leases.map(l => l.token)).catch(() => undefined)
  }

  /** Aborts ranges in their workers, one message per worker, and forgets them here. */
  private abortInFlight(ranges: InFlight[], reason: string): number[] {
    const bySlot = new Map<WorkerSlot, number[]>()
    for (const f of ranges) {
      this.inflight.delete(f.lease.token)
      f.slot.active--
      const tokens = bySlot.get(f.slot)
      if (tokens) tokens.push(f.lease.token)
      else bySlot.set(f.slot, [f.lease.token])
    }
    for (const [slot, tokens] of bySlot) slot.abort(tokens, reason)
    return ranges.filter(f => !f.timedOut).map(f => f.lease.token)
  }

  private async end(status: RunStatus, error?: string, cause?: unknown, everywhere = true): Promise<void> {
    if (this.state !== 'running') return
    const { job, runId, store, options, logger } = this.d
    this.state = status === 'stopped' ? 'stopping' : 'ending'
    clearTimeout(this.fillTimer)
    if (status === 'failed') logger.error(`Job "${job.name}" failed: ${error}`, (cause as Error | undefined)?.stack)
    if (this.inflight.size) logger.info(`Job "${job.name}": ${status === 'stopped' ? 'stopping' : 'ending'}; waiting up to ${options.shutdownTimeoutMs} ms for ${this.inflight.size} ranges in flight.`)
    const reason = status === 'stopped' ? 'run stopped' : 'run failed'
    // Ranges waiting in a worker's backlog never start: they go back with the unsent ones.
    const waiting = this.abortInFlight([...this.inflight.values()].filter(f => f.startedAt === undefined), reason)
    await this.release([...this.ready.splice(0).map(l => l.token), ...waiting]).catch(() => undefined)
    // In-flight ranges may finish (and count) before the rest are given back.
    await this.settle(options.shutdownTimeoutMs)
    if (this.inflight.size) {
      const tokens = this.abortInFlight([...this.inflight.values()], reason)
      await this.release(tokens).catch(() => undefined)
      logger.warn(`Job "${job.name}": released ${tokens.length} ranges still in flight; they are handed out again by the next run.`)
    }
    await this.settle(options.shutdownTimeoutMs)
    if (status !== 'stopped' && everywhere) await store.endRun(job.name, runId, status, error).catch(() => undefined)
    clearInterval(this.heartbeatTimer)
    clearInterval(this.controlTimer)
    clearInterval(this.watchdog)
    this.throttle.stop()
    await this.pool.drain(Math.max(options.shutdownTimeoutMs, 5000))
    const summary = await this.summary(status, error)
    if (status === 'stopped') this.d.events.emit(ParallelWorkerEvent.BeforeStop, new BeforeStopEvent(job.name, runId, summary))
    this.d.events.emit(ParallelWorkerEvent.RunCompleted, new RunCompletedEvent(job.name, runId, summary))
    this.resolve(summary)
  }

  /** Waits until nothing is in flight and every store write landed, or `timeoutMs`. */
  private async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while ((this.inflight.size > 0 || this.pending > 0) && Date.now() < deadline) {
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now())))
        this.stopWaiter = () => (clearTimeout(t), resolve())
      })
    }
    this.stopWaiter = undefined
  }

  private async summary(status: RunStatus, error?: string): Promise<RunSummary> {
    const { job, runId, store } = this.d
    const s = await store.state(job.name).catch(() => undefined)
    const c = s && s.runId === runId ? s.counters : undefined
    return {
      job: job.name, runId, status,
      ids: c?.ids ?? this.recorder.ids,
      ranges: { completed: c?.completed ?? this.recorder.ranges, retried: c?.retried ?? 0, dead: c?.dead ?? 0 },
      workers: { started: c?.workersStarted ?? this.pool.started, restarted: c?.workersRestarted ?? this.pool.restarted },
      durationMs: Date.now() - this.d.startedAt,
      ...(error !== undefined ? { error } : {}),
      host: { ids: this.recorder.ids, ranges: this.recorder.ranges },
    }
  }
}
