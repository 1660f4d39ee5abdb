import { Logger } from '@nestjs/common';
import type { JobDefinition } from '../job.registry';
import type { ID, Range, RangeContext } from '../interfaces/range.interface';
import { inRangeSpan } from '../run/tracing';
import type {
  AssignedRun,
  WireError,
  WireRange,
  WireResult,
} from './ipc.messages';

export const toWireError = (e: unknown): WireError =>
  e instanceof Error
    ? { message: e.message || e.name, stack: e.stack }
    : { message: String(e) };

/** A RangeItemsFailedError, also from another copy of this package: the ids it names, as they travel. */
function failedIds(e: unknown): ID[] | undefined {
  const ids = (e as { name?: unknown; ids?: unknown })?.ids;
  if ((e as Error)?.name !== 'RangeItemsFailedError' || !Array.isArray(ids))
    return undefined;
  return ids.map((id) => (typeof id === 'bigint' ? id.toString() : id));
}

/**
 * A range's abort state. The AbortController is made only when the handler
 * reads `ctx.signal` (most never do, and one per range is measurable on tiny
 * ranges); an abort before that is kept and shows on the signal when read.
 */
class Abortable {
  private controller?: AbortController;
  private reason?: Error;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: string): void {
    if (this.reason) return;
    this.reason = new Error(reason);
    this.controller?.abort(this.reason);
  }
}

/**
 * Calls the job's handler for one range with its `RangeContext`, turning a
 * throw into a failed result. Keeps each running range's abort state for `abort()`.
 */
export class RangeExecutor {
  private readonly running = new Map<number, Abortable>();
  private readonly logger: Logger;

  private readonly runId: string;

  constructor(
    private readonly job: JobDefinition,
    private readonly run: AssignedRun,
    private readonly workerId: string,
  ) {
    this.runId = run.runId;
    this.logger = new Logger(`ParallelWorker:${job.name}`);
  }

  /** Ranges being handled now. */
  get active(): number {
    return this.running.size;
  }

  execute(wire: WireRange): Promise<WireResult> {
    return inRangeSpan(
      this.run.trace,
      { job: this.job.name, runId: this.runId, workerId: this.workerId },
      wire,
      () => this.call(wire),
    );
  }

  private async call(wire: WireRange): Promise<WireResult> {
    const abortable = new Abortable();
    this.running.set(wire.token, abortable);
    const range: Range = {
      ...wire.payload,
      idsRange: wire.ids,
      lastId: wire.prev,
    };
    const ctx: Omit<RangeContext, 'signal'> = {
      job: this.job.name,
      runId: this.runId,
      attempt: wire.attempt,
      token: wire.token,
      workerId: this.workerId,
      logger: this.logger,
      ...(this.run.params && { params: this.run.params }),
    };
    Object.defineProperty(ctx, 'signal', {
      get: () => abortable.signal,
      enumerable: true,
    });
    const started = performance.now();
    try {
      await this.job.handler.call(range, ctx as RangeContext);
      return { token: wire.token, ok: true, ms: performance.now() - started };
    } catch (e) {
      const ids = failedIds(e);
      if (!ids) return { token: wire.token, ok: false, error: toWireError(e) };
      // The dead letter tells what failed (the cause's stack when it has one).
      const cause = (e as Error).cause;
      const error = toWireError(e);
      if (cause instanceof Error) error.stack = cause.stack;
      return { token: wire.token, ok: false, error, failedIds: ids };
    } finally {
      this.running.delete(wire.token);
    }
  }

  abort(tokens: number[], reason: string): void {
    for (const token of tokens) this.running.get(token)?.abort(reason);
  }

  abortAll(reason: string): void {
    this.abort([...this.running.keys()], reason);
  }
}
