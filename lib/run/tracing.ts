import type * as Otel from '@opentelemetry/api';
import type {
  TraceParent,
  WireRange,
  WireResult,
} from '../cluster/ipc.messages';
import type { RunSummary } from '../interfaces/run-summary.interface';

const TRACER = 'nestjs-parallel-worker';
const A = 'parallel_worker';

let api: typeof Otel | null | undefined;

/** `@opentelemetry/api` when the app has it (an optional peer), loaded once. */
function otel(): typeof Otel | undefined {
  if (api === undefined) {
    try {
      // An optional peer: loaded only when the app has it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      api = require('@opentelemetry/api') as typeof Otel;
    } catch {
      api = null;
    }
  }
  return api ?? undefined;
}

/**
 * Calls `fn`; a throw is swallowed: tracing never breaks a run or a range
 * (a span processor that throws costs its spans, nothing else).
 */
function safely<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` with `ctx` active; if the context manager throws before `fn`
 * ran, runs `fn` without it (never twice, and `fn`'s own throw is its own).
 */
function within<T>(o: typeof Otel, ctx: Otel.Context, fn: () => T): T {
  let called = false;
  try {
    return o.context.with(ctx, () => ((called = true), fn()));
  } catch (e) {
    if (called) throw e;
    return fn();
  }
}

/**
 * A run's span in the primary. Without `@opentelemetry/api`, or without an
 * SDK registered, nothing is recorded and workers get no parent, so they
 * make no range spans either.
 */
export class RunSpan {
  private constructor(
    private readonly o: typeof Otel,
    private readonly span: Otel.Span,
    /** What workers parent their range spans on. */
    readonly parent: TraceParent,
  ) {}

  static start(
    job: string,
    runId: string,
    joined: boolean,
  ): RunSpan | undefined {
    const o = otel();
    if (!o) return undefined;
    return safely(() => {
      const span = o.trace
        .getTracer(TRACER)
        .startSpan(`parallel-worker run ${job}`, {
          attributes: {
            [`${A}.job`]: job,
            [`${A}.run_id`]: runId,
            [`${A}.joined`]: joined,
          },
        });
      if (!span.isRecording()) return undefined;
      const { traceId, spanId, traceFlags } = span.spanContext();
      return new RunSpan(o, span, { traceId, spanId, traceFlags });
    });
  }

  /** Runs `fn` with this span active, so spans the loader makes (a database query) nest under it. */
  with<T>(fn: () => T): T {
    const ctx = safely(() =>
      this.o.trace.setSpan(this.o.context.active(), this.span),
    );
    return ctx ? within(this.o, ctx, fn) : fn();
  }

  end(summary: RunSummary | undefined, error?: unknown): void {
    safely(() => {
      if (summary)
        this.span.setAttributes({
          [`${A}.status`]: summary.status,
          [`${A}.ids`]: summary.ids,
          [`${A}.ranges.completed`]: summary.ranges.completed,
          [`${A}.ranges.retried`]: summary.ranges.retried,
          [`${A}.ranges.dead`]: summary.ranges.dead,
          [`${A}.host.ids`]: summary.host.ids,
        });
      const failure =
        error ?? (summary?.status === 'failed' ? summary.error : undefined);
      if (failure !== undefined) fail(this.o, this.span, failure);
      this.span.end();
    });
  }
}

function fail(o: typeof Otel, span: Otel.Span, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  span.recordException(error instanceof Error ? error : { message });
  span.setStatus({ code: o.SpanStatusCode.ERROR, message });
}

/**
 * Calls `handle` in a span of the range, child of the run span `parent`
 * (across the IPC hop), with job, run, attempt, token, ids and outcome.
 * Without a parent (no SDK in the primary) it only calls `handle`; a
 * tracing call that throws never changes the range's result.
 */
export async function inRangeSpan(
  parent: TraceParent | undefined,
  info: { job: string; runId: string; workerId: string },
  range: WireRange,
  handle: () => Promise<WireResult>,
): Promise<WireResult> {
  const o = parent && otel();
  if (!o) return handle();
  const started = safely(() => {
    const parentContext = o.trace.setSpanContext(o.ROOT_CONTEXT, {
      ...parent,
      isRemote: true,
    });
    const ids = range.ids;
    const span = o.trace.getTracer(TRACER).startSpan(
      `parallel-worker range ${info.job}`,
      {
        attributes: {
          [`${A}.job`]: info.job,
          [`${A}.run_id`]: info.runId,
          [`${A}.worker_id`]: info.workerId,
          [`${A}.attempt`]: range.attempt,
          [`${A}.token`]: range.token,
          [`${A}.ids`]: ids.length,
          ...(ids.length && {
            [`${A}.first_id`]: String(ids[0]),
            [`${A}.last_id`]: String(ids[ids.length - 1]),
          }),
        },
      },
      parentContext,
    );
    return { span, ctx: o.trace.setSpan(parentContext, span) };
  });
  if (!started) return handle();
  const { span, ctx } = started;
  const result = await within(o, ctx, handle);
  safely(() => {
    span.setAttribute(
      `${A}.outcome`,
      result.ok
        ? result.aborted
          ? 'aborted'
          : 'completed'
        : result.failedIds
          ? 'partial'
          : 'failed',
    );
    if (!result.ok) {
      if (result.failedIds)
        span.setAttribute(`${A}.failed_ids`, result.failedIds.length);
      fail(
        o,
        span,
        Object.assign(new Error(result.error.message), {
          stack: result.error.stack,
        }),
      );
    }
    span.end();
  });
  return result;
}
