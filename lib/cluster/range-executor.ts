import { Logger } from '@nestjs/common'
import type { JobDefinition } from '../job.registry'
import type { Range } from '../interfaces/range.interface'
import type { WireError, WireRange, WireResult } from './ipc.messages'

export const toWireError = (e: unknown): WireError =>
  e instanceof Error ? { message: e.message || e.name, stack: e.stack } : { message: String(e) }

/**
 * Calls the job's handler for one range with its `RangeContext`, turning a
 * throw into a failed result. Keeps an AbortController per range for `abort()`.
 */
export class RangeExecutor {
  private readonly controllers = new Map<number, AbortController>()
  private readonly logger: Logger

  constructor(private readonly job: JobDefinition, private readonly runId: string, private readonly workerId: string) {
    this.logger = new Logger(`ParallelWorker:${job.name}`)
  }

  /** Ranges being handled now. */
  get active(): number {
    return this.controllers.size
  }

  async execute(wire: WireRange): Promise<WireResult> {
    const controller = new AbortController()
    this.controllers.set(wire.token, controller)
    const range: Range = { ...wire.payload, idsRange: wire.ids, lastId: wire.prev }
    const started = performance.now()
    try {
      await this.job.handler.call(range, {
        job: this.job.name, runId: this.runId, attempt: wire.attempt, token: wire.token,
        workerId: this.workerId, signal: controller.signal, logger: this.logger,
      })
      return { token: wire.token, ok: true, ms: performance.now() - started }
    } catch (e) {
      return { token: wire.token, ok: false, error: toWireError(e) }
    } finally {
      this.controllers.delete(wire.token)
    }
  }

  abort(tokens: number[], reason: string): void {
    for (const token of tokens) this.controllers.get(token)?.abort(new Error(reason))
  }

  abortAll(reason: string): void {
    this.abort([...this.controllers.keys()], reason)
  }
}
