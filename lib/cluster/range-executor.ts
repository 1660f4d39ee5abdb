import { Logger } from '@nestjs/common';
import { DEFAULT_FENCE_TABLE } from '../fence/fence-ddl';
import { RangeFence } from '../fence/range-fence';
import type { JobDefinition } from '../job.registry';
import type { ID, Range, RangeContext } from '../interfaces/range.interface';
import { show } from '../parallel-worker.messages';
import { frozen } from '../run/run-params';
import { inRangeSpan } from '../run/tracing';
import type { AssignedRun, WireRange, WireResult } from './ipc.messages';
import { toWireError } from './wire-error';

/**
 * A RangeItemsFailedError, also from another copy of this package: the ids
 * it names, as they travel; a message when some are not ids at all (then the
 * whole range fails, and every other result of the batch still travels).
 */
function failedIds(e: unknown): ID[] | string | undefined {
  const ids = (e as { name?: unknown; ids?: unknown })?.ids;
  if ((e as Error)?.name !== 'RangeItemsFailedError' || !Array.isArray(ids))
    return undefined;
  const wire = ids.map((id: unknown) =>
    typeof id === 'bigint' ? id.toString() : id,
  );
  const bad = wire.filter(
    (id) =>
      typeof id !== 'string' &&
      !(typeof id === 'number' && Number.isFinite(id)),
  );
  if (bad.length)
    return `RangeItemsFailedError named ${bad.length} ${bad.length === 1 ? 'value that is not an id' : 'values that are not ids'} (${bad
      .slice(0, 5)
      .map((v) => show(v))
      .join(
        ', ',
      )}): name ids (numbers, strings or bigints) of the range it was given; the whole range is retried`;
  return wire as ID[];
}

/**
 * What a handler threw as the failed result of its range. Never throws
 * itself, whatever was thrown (a getter that throws on `ids` or `cause`
 * makes it a plain failure of the whole range).
 */
function failure(token: number, e: unknown): WireResult {
  const error = toWireError(e);
  try {
    const ids = failedIds(e);
    if (!ids) return { token, ok: false, error };
    if (typeof ids === 'string')
      return { token, ok: false, error: { ...error, message: ids } };
    // The dead letter tells what failed (the cause's stack when it has one).
    const cause = (e as Error).cause;
    if (cause instanceof Error) error.stack = toWireError(cause).stack;
    return { token, ok: false, error, failedIds: ids };
  } catch {
    return { token, ok: false, error };
  }
}

/**
 * A range's abort state. The AbortController is made only when the handler
 * reads `ctx.signal` (most never do, and one per range is measurable on tiny
 * ranges); an abort before that is kept and shows on the signal when read.
 */
class Abortable {
  private controller?: AbortController;
  private reason?: Error;
  /** Its `ctx.fence` was called: it may commit the whole range, so it is never split. */
  fenced = false;
  /** It timed out and goes to its retry split in two: its `ctx.fence` refuses (the halves apply its ids). */
  split = false;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /**
   * True once the range was aborted and the handler read its signal (before
   * or after the abort): it may have stopped early, as told. One that never
   * read it cannot have, and finished its range.
   */
  get heeded(): boolean {
    return this.reason !== undefined && this.controller !== undefined;
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
  private readonly params?: Record<string, unknown>;

  private readonly fence: RangeFence;

  /** A handler of the run called `ctx.fence` (the primary is told once). */
  private fencing = false;

  /**
   * `fenceTable`: the `fence` option's table, where `ctx.fence()` writes.
   * `fenced`: called at the run's first `ctx.fence()` call, before its
   * database call, so the primary learns that the run's ranges keep their
   * identity: one that times out is retried whole, never split
   * (RunEngine.fenced). Until it learns, it asks before splitting one
   * (`split()`), so a range whose fence was called is never split.
   */
  constructor(
    private readonly job: JobDefinition,
    private readonly run: AssignedRun,
    private readonly workerId: string,
    fenceTable = DEFAULT_FENCE_TABLE,
    private readonly fenced: () => void = () => undefined,
  ) {
    this.runId = run.runId;
    this.fence = new RangeFence(job.name, run.runId, fenceTable);
    // As in the primary: one range's handler cannot change what the next one sees.
    this.params = run.params && frozen(run.params);
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
      ...(this.params && { params: this.params }),
      fence: this.fenceFor(wire, abortable),
    };
    Object.defineProperty(ctx, 'signal', {
      get: () => abortable.signal,
      enumerable: true,
    });
    const started = performance.now();
    try {
      await this.job.handler.call(range, ctx as RangeContext);
      const ms = performance.now() - started;
      // A handler that obeys its aborted signal returns without an error: the primary must not count its range done.
      return abortable.heeded
        ? { token: wire.token, ok: true, ms, aborted: true }
        : { token: wire.token, ok: true, ms };
    } catch (e) {
      return failure(wire.token, e);
    } finally {
      this.running.delete(wire.token);
    }
  }

  /** The range's `ctx.fence`: the run's first call tells the primary first. */
  private fenceFor(
    wire: WireRange,
    abortable: Abortable,
  ): RangeContext['fence'] {
    const fence = this.fence.forRange(wire);
    return (tx, options) => {
      if (!this.fencing) {
        this.fencing = true;
        this.fenced();
      }
      abortable.fenced = true;
      if (abortable.split) {
        const { ids } = wire;
        return Promise.reject(
          new Error(
            `Job "${this.job.name}": ctx.fence() refused: this attempt at the range ${ids.length ? `${String(ids[0])}..${String(ids[ids.length - 1])}` : `after ${String(wire.prev)}`} timed out and went to its retry split in two before its fence was called; its halves apply its ids, and nothing of this attempt may commit.`,
          ),
        );
      }
      return fence(tx, options);
    };
  }

  /**
   * The primary would retry the running range `token` (timed out) split in
   * two: true, and its `ctx.fence` refuses from now on, when that was not
   * called yet; false when it was (it may commit the whole range: retried
   * whole) or the range is not running here.
   */
  split(token: number): boolean {
    const a = this.running.get(token);
    if (!a || a.fenced) return false;
    a.split = true;
    return true;
  }

  abort(tokens: number[], reason: string): void {
    for (const token of tokens) this.running.get(token)?.abort(reason);
  }

  abortAll(reason: string): void {
    this.abort([...this.running.keys()], reason);
  }
}
