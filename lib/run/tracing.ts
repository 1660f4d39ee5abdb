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
 * A run's span in the primary. Without `@opentelemetry/api`, or without an
 * SDK registered, nothing is recorded and workers get no parent, so they
 * make no range spans either.
 */
export class RunSpan {
  private constructor(
    private readonly o: typeof Otel,
    private readonly span: Otel.Span,
  ) {}

  static start(
    job: string,
    runId: string,
    joined: boolean,
  ): RunSpan | undefined {
    const o = otel();
    if (!o) return undefined;
    const span = o.trace
      .getTracer(TRACER)
      .startSpan(`parallel-worker run ${job}`, {
        attributes: {
          [`${A}.job`]: job,
          [`${A}.run_id`]: runId,
          [`${A}.joined`]: joined,
        },
      });
    return span.isRecording() ? new RunSpan(o, span) : undefined;
  }

  /** What workers parent their range spans on. */
  get parent(): TraceParent {
    const { traceId, spanId, traceFlags } = this.span.spanContext();
    return { traceId, spanId, traceFlags };
  }

  /** Runs `fn` with this span active, so spans the loader makes (a database query) nest under it. */
  with<T>(fn: () => T): T {
    return this.o.context.with(
      this.o.trace.setSpan(this.o.context.active(), this.span),
      fn,
    );
  }

  end(summary: RunSummary | undefined, error?: unknown): void {
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
 * Without a parent (no SDK in the primary) it only calls `handle`.
 */
export async function inRangeSpan(
  parent: TraceParent | undefined,
  info: { job: string; runId: string; workerId: string },
  range: WireRange,
  handle: () => Promise<WireResult>,
): Promise<WireResult> {
  const o = parent && otel();
  if (!o) return handle();
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
  const result = await o.context.with(
    o.trace.setSpan(parentContext, span),
    handle,
  );
  span.setAttribute(
    `${A}.outcome`,
    result.ok ? 'completed' : result.failedIds ? 'partial' : 'failed',
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
  return result;
}
