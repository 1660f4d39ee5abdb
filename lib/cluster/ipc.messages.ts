import type { ID } from '../interfaces/range.interface';
import { receivedError, type WireError } from './wire-error';

export type { WireError } from './wire-error';

/** Tag on every message of ours, so an app's own IPC messages pass by untouched. */
const TAG = 'parallel-worker';

/** One range as it travels to a worker. */
export interface WireRange {
  token: number;
  attempt: number;
  ids: ID[];
  /** Cursor before the range (the handler's `lastId`). */
  prev: ID | null;
  payload?: Record<string, unknown>;
  /** The run that loaded the range, when another than the one handing it out (its fence identity). */
  run?: string;
}

/**
 * `ms`: how long the handler ran; `aborted`: its signal was aborted when it
 * returned and it had read it (it may have stopped early, as told: the range
 * is not done);
 * `notStarted`: aborted while it waited in the worker's backlog;
 * `failedIds`: the handler threw RangeItemsFailedError naming these ids (the
 * rest of the range is done).
 */
export type WireResult =
  | { token: number; ok: true; ms: number; aborted?: true }
  | {
      token: number;
      ok: false;
      error: WireError;
      notStarted?: true;
      failedIds?: ID[];
    };

/** The run span's ids, as they travel to workers with the run (W3C trace context). */
export interface TraceParent {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

/** What a worker is told about the run it is assigned to. */
export interface AssignedRun {
  job: string;
  runId: string;
  /** The run's params (`ctx.params`). */
  params?: Record<string, unknown>;
  /** The run span, parent of the range spans (OpenTelemetry). */
  trace?: TraceParent;
}

/**
 * Primary to worker. A worker serves one run at a time: `assign` gives it to
 * a run (the ranges and aborts that follow are that run's), `release` ends
 * that (it answers what it holds, then says `idle` again), and `drain`
 * dismisses it (it answers what it holds, then its `run()` resolves).
 */
export type PrimaryMessage =
  | ({ tag: typeof TAG; type: 'assign' } & AssignedRun)
  | { tag: typeof TAG; type: 'ranges'; ranges: WireRange[] }
  /**
   * `split`: the ranges timed out, and the primary would retry each split in two: the worker answers `split` for
   * each, and from then on refuses its `ctx.fence` when it agreed.
   */
  | {
      tag: typeof TAG;
      type: 'abort';
      tokens: number[];
      reason: string;
      split?: true;
    }
  | { tag: typeof TAG; type: 'release' }
  | { tag: typeof TAG; type: 'drain' };

/** Worker to primary: `idle` once its `run()` was called, and again after each release. */
export type WorkerMessage =
  | { tag: typeof TAG; type: 'idle'; workerId: string }
  /** The worker's app finished starting (its bootstrap hooks ran) and its main.ts has not called `run()`. */
  | { tag: typeof TAG; type: 'booted'; workerId: string }
  | { tag: typeof TAG; type: 'results'; results: WireResult[] }
  /**
   * A handler of the run the worker serves called `ctx.fence`: sent once per run, at the first call, before its
   * database call (a run that fences never has a timed-out range split: RunEngine.fenced).
   */
  | { tag: typeof TAG; type: 'fenced' }
  /**
   * The answer to an abort with `split`: true when the range's `ctx.fence` had not been called (it now refuses,
   * so no attempt of the whole range can commit and it may go to its retry split), false when it had been called
   * or the range is no longer running here (it is retried whole).
   */
  | { tag: typeof TAG; type: 'split'; token: number; split: boolean };

export type RunMessage = Extract<PrimaryMessage, { type: 'ranges' | 'abort' }>;

type Body<M> = M extends unknown ? Omit<M, 'tag'> : never;

export const message = <M extends PrimaryMessage | WorkerMessage>(
  body: Body<M>,
): M => ({ tag: TAG, ...body }) as M;

const isObject = (v: unknown): v is Record<string, any> =>
  typeof v === 'object' && v !== null;
const isId = (v: unknown): v is ID =>
  typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
const isToken = (v: unknown): v is number =>
  Number.isSafeInteger(v) && (v as number) > 0;

const isRange = (v: unknown): v is WireRange =>
  isObject(v) &&
  isToken(v.token) &&
  Number.isInteger(v.attempt) &&
  Array.isArray(v.ids) &&
  v.ids.every(isId) &&
  (v.prev === null || isId(v.prev)) &&
  (v.payload === undefined || isObject(v.payload));

/**
 * One result of a worker's batch, checked on its own so one bad entry costs
 * only its own range: a good one as sent (its error fields coerced to text),
 * a malformed one as the failure of its range with what was wrong, and one
 * that names no range as a problem only.
 */
function readResult(v: unknown): { result?: WireResult; problem?: string } {
  if (!isObject(v) || !isToken(v.token))
    return { problem: `a result that names no range: ${shown(v)}` };
  const token = v.token;
  const malformed = (what: string) => {
    const problem = `the result for token ${token} ${what}: ${shown(v)}`;
    return {
      problem,
      result: {
        token,
        ok: false as const,
        error: {
          message: `the worker sent a malformed result (${what}); the range is retried`,
        },
      },
    };
  };
  if (v.ok === true) {
    if (!(Number.isFinite(v.ms) && v.ms >= 0))
      return malformed('has no handler time');
    if (v.aborted !== undefined && v.aborted !== true)
      return malformed('has an aborted that is not true');
    return {
      result: {
        token,
        ok: true,
        ms: v.ms as number,
        ...(v.aborted === true && { aborted: true as const }),
      },
    };
  }
  if (v.ok !== false) return malformed('says neither ok nor failed');
  if (v.notStarted !== undefined && v.notStarted !== true)
    return malformed('has a notStarted that is not true');
  if (
    v.failedIds !== undefined &&
    !(Array.isArray(v.failedIds) && v.failedIds.every(isId))
  )
    return malformed('names failed ids that are not ids');
  return {
    result: {
      token,
      ok: false,
      error: receivedError(v.error),
      ...(v.notStarted === true && { notStarted: true as const }),
      ...(v.failedIds !== undefined && { failedIds: v.failedIds as ID[] }),
    },
  };
}

/** At most 200 characters of a value, for a warning. */
function shown(v: unknown): string {
  try {
    return (JSON.stringify(v) ?? String(v)).slice(0, 200);
  } catch {
    return 'a value that cannot be shown';
  }
}

const isTrace = (v: unknown): boolean =>
  isObject(v) &&
  typeof v.traceId === 'string' &&
  typeof v.spanId === 'string' &&
  typeof v.traceFlags === 'number';

/** True when `m` is ours at all (a malformed one of ours is still ours: it is reported, not ignored). */
export const isOurs = (m: unknown): m is { tag: string; type?: unknown } =>
  isObject(m) && m.tag === TAG;

/** Validates a message from the primary; undefined when malformed. */
export function parsePrimaryMessage(m: unknown): PrimaryMessage | undefined {
  if (!isOurs(m)) return undefined;
  const v = m as Record<string, any>;
  switch (v.type) {
    case 'ranges':
      return Array.isArray(v.ranges) && v.ranges.every(isRange)
        ? (v as PrimaryMessage)
        : undefined;
    case 'abort':
      return Array.isArray(v.tokens) &&
        v.tokens.every(isToken) &&
        typeof v.reason === 'string' &&
        (v.split === undefined || v.split === true)
        ? (v as PrimaryMessage)
        : undefined;
    case 'assign':
      return typeof v.job === 'string' &&
        typeof v.runId === 'string' &&
        (v.params === undefined || isObject(v.params)) &&
        (v.trace === undefined || isTrace(v.trace))
        ? (v as PrimaryMessage)
        : undefined;
    case 'release':
    case 'drain':
      return v as PrimaryMessage;
    default:
      return undefined;
  }
}

/**
 * Validates a message from a worker; undefined when malformed. A `results`
 * message is read entry by entry: `report` hears of each bad entry.
 */
export function parseWorkerMessage(
  m: unknown,
  report: (problem: string) => void = () => undefined,
): WorkerMessage | undefined {
  if (!isOurs(m)) return undefined;
  const v = m as Record<string, any>;
  switch (v.type) {
    case 'idle':
    case 'booted':
      return typeof v.workerId === 'string' ? (v as WorkerMessage) : undefined;
    case 'fenced':
      return message<WorkerMessage>({ type: 'fenced' });
    case 'split':
      return isToken(v.token) && typeof v.split === 'boolean'
        ? message<WorkerMessage>({
            type: 'split',
            token: v.token,
            split: v.split,
          })
        : undefined;
    case 'results': {
      if (!Array.isArray(v.results)) return undefined;
      const results: WireResult[] = [];
      for (const entry of v.results) {
        const { result, problem } = readResult(entry);
        if (problem) report(problem);
        if (result) results.push(result);
      }
      return message<WorkerMessage>({ type: 'results', results });
    }
    default:
      return undefined;
  }
}
