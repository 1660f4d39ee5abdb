import type { JobDefinition } from '../job.registry'
import type { ModuleLogger } from '../parallel-worker.logger'
import { message, isOurs, parsePrimaryMessage, type WireResult, type WorkerMessage } from './ipc.messages'
import { RangeExecutor } from './range-executor'

/** What `run()` resolves with in a worker: this worker's share. */
export interface WorkerShare {
  ids: number
  ranges: number
  drained: boolean
}

/**
 * The worker side of a run: asks the primary for ranges, handles them with the
 * job's handler and answers with batched results until told to drain.
 */
export class WorkerRunner {
  private readonly executor: RangeExecutor
  private queue: WireResult[] = []
  private flushing = false
  private draining = false
  private ids = 0
  private ranges = 0
  private finish!: (share: WorkerShare) => void
  readonly done: Promise<WorkerShare>

  constructor(private readonly job: JobDefinition, runId: string, readonly workerId: string, private readonly logger: ModuleLogger) {
    this.executor = new RangeExecutor(job, runId, workerId)
    this.done = new Promise(resolve => (this.finish = resolve))
  }

  serve(): Promise<WorkerShare> {
    process.on('message', this.onMessage)
    process.on('disconnect', this.onDisconnect)
    // Ctrl-C reaches the whole process group: the primary decides how this worker stops.
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
    this.send(message<WorkerMessage>({ type: 'ready', workerId: this.workerId, job: this.job.name }))
    return this.done
  }

  /** Waits for the ranges in hand (for an app closing by itself, e.g. with shutdown hooks). */
  async idle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while ((this.executor.active > 0 || this.queue.length > 0 || this.flushing) && Date.now() < deadline) {
      await new Promise(r => setTimeout(r, 20))
    }
  }

  private readonly onMessage = (m: unknown): void => {
    if (!isOurs(m)) return
    const msg = parsePrimaryMessage(m)
    if (!msg) return this.logger.warn(`Worker ${this.workerId} ignored a malformed message from the primary: ${JSON.stringify(m).slice(0, 200)}`)
    if (msg.type === 'ranges') {
      for (const range of msg.ranges) {
        void this.executor.execute(range).then(result => {
          if (result.ok) {
            this.ids += range.ids.length
            this.ranges++
          }
          this.queue.push(result)
          this.flush()
        })
      }
    } else if (msg.type === 'abort') {
      this.executor.abort(msg.tokens, msg.reason)
    } else {
      this.draining = true
      this.maybeFinish()
    }
  }

  private readonly onDisconnect = (): void => {
    this.executor.abortAll('the primary is gone')
    this.logger.warn(`Worker ${this.workerId}: the primary disconnected; stopping.`)
    this.draining = true
    this.queue = []
    this.end(false)
  }

  private readonly onSignal = (signal: string): void => {
    this.logger.debug(`Worker ${this.workerId} got ${signal}; the primary stops it.`)
  }

  /** Batches results that finish in the same turn of the event loop into one message. */
  private flush(): void {
    if (this.flushing) return
    this.flushing = true
    setImmediate(() => {
      const results = this.queue
      this.queue = []
      this.flushing = false
      if (results.length) this.send(message<WorkerMessage>({ type: 'results', results }))
      this.maybeFinish()
    })
  }

  private maybeFinish(): void {
    if (this.draining && this.executor.active === 0 && this.queue.length === 0 && !this.flushing) this.end(true)
  }

  private end(drained: boolean): void {
    process.off('message', this.onMessage)
    process.off('disconnect', this.onDisconnect)
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    this.finish({ ids: this.ids, ranges: this.ranges, drained })
  }

  private send(m: WorkerMessage): void {
    if (!process.connected || !process.send) return
    process.send(m, undefined, {}, () => undefined)
  }
}
