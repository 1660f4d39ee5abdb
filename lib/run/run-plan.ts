import { RunFailedError } from '../errors/run-failed.error';
import { RunRefusedError } from '../errors/run-refused.error';
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { ID } from '../interfaces/range.interface';
import type { JobDefinition } from '../job.registry';
import type { ModuleLogger } from '../parallel-worker.logger';
import {
  PARTITIONS_TIMED_OUT,
  PLAN_CURSOR_MOVED,
  show,
  TOTAL_TIMED_OUT,
} from '../parallel-worker.messages';
import type {
  CoordinationStore,
  PartitionBounds,
  RunStart,
} from '../store/coordination-store.interface';
import { idOrder } from './id-order';
import { planPartitions } from './partition-plan';
import { TimeLimitError, withinMs } from './time-limit';
import { toWireError } from '../cluster/wire-error';

/** What starting a run needs from the orchestrator. */
export interface RunPlanDeps {
  store: CoordinationStore;
  options: ResolvedParallelWorkerOptions;
  logger: ModuleLogger;
  /** A store call retried while the store fails, for at most storeConnectTimeoutMs. */
  firstCall<T>(job: string, call: () => Promise<T>): Promise<T>;
}

/** The start `run()` asks of the store. */
export interface RunRequest {
  /** The run's id if it starts (not if it joins). */
  runId: string;
  from: ID | null | undefined;
  params?: Record<string, unknown>;
  /** The job's loader and handler: which app it is. */
  declaredBy: string;
  start: RunStart;
  /** performance.now() when run() was called. */
  startedAt: number;
}

/** Plans a start makes again, when the cursor keeps moving under it, before it gives up. */
const MAX_PLANS = 5;

/**
 * Starts the job's run, or joins the active one, with the job's partitions
 * planned from its cursor. The store keeps a new plan only against the cursor
 * it was planned from: when that moved meanwhile (a reset while a slow
 * @RangePartitions ran), the plan is made again from where the cursor is now,
 * never stored clipped at the old one.
 */
export async function startOrJoin(
  deps: RunPlanDeps,
  def: JobDefinition,
  request: RunRequest,
): Promise<{ runId: string; joined: boolean; params?: string }> {
  let plan = await firstPlan(deps, def, request);
  for (let plans = 1; ; plans++) {
    const started = await deps.firstCall(def.name, () =>
      deps.store.job(def.name).start({
        runId: request.runId,
        from: request.from,
        declaredBy: request.declaredBy,
        partitions: plan?.bounds,
        start: request.start,
        plannedFrom: plan?.from,
      }),
    );
    if (!('replanFrom' in started)) return started;
    if (plans >= MAX_PLANS)
      throw new RunRefusedError(
        def.name,
        PLAN_CURSOR_MOVED(def.name, def.partitions?.name ?? '', plans),
      );
    const from = started.replanFrom;
    plan = { from, bounds: await plannedPartitions(deps, def, request, from) };
  }
}

/**
 * The partitions a run that starts now would store, and the cursor they are
 * planned from: asked of the job's @RangePartitions method only when the
 * store holds none for the job (or `from` replaces them) and no run is
 * active to join.
 */
async function firstPlan(
  deps: RunPlanDeps,
  def: JobDefinition,
  request: RunRequest,
): Promise<{ bounds?: PartitionBounds[]; from?: ID | null } | undefined> {
  if (!def.partitions) return undefined;
  const { from } = request;
  // With `from` the store sets the cursor the plan is clipped at in the same step: nothing can move it between.
  if (from !== undefined)
    return { bounds: await plannedPartitions(deps, def, request, from) };
  const s = await deps.firstCall(def.name, () =>
    deps.store.job(def.name).state(),
  );
  const active = s.state === 'running' && s.runId !== null;
  if (active || s.partitions?.length) return { from: s.cursor };
  return {
    from: s.cursor,
    bounds: await plannedPartitions(deps, def, request, s.cursor),
  };
}

/** The job's @RangePartitions, within loaderTimeoutMs: a run that cannot have its plan fails, naming the method. */
async function plannedPartitions(
  deps: RunPlanDeps,
  def: JobDefinition,
  request: RunRequest,
  floor: ID | null,
): Promise<PartitionBounds[]> {
  const timeoutMs = deps.options.loaderTimeoutMs;
  try {
    return await planPartitions(
      def,
      request.runId,
      idOrder(deps.options.idOrder),
      floor,
      request.params,
      timeoutMs,
    );
  } catch (e) {
    if (!(e instanceof TimeLimitError)) throw e;
    const error = PARTITIONS_TIMED_OUT(
      def.name,
      def.partitions?.name ?? '',
      timeoutMs,
    );
    deps.logger.error(`Job "${def.name}" failed: ${error}`);
    throw new RunFailedError(
      {
        job: def.name,
        runId: request.runId,
        status: 'failed',
        ids: 0,
        ranges: { completed: 0, retried: 0, dead: 0 },
        workers: { started: 0, restarted: 0 },
        durationMs: Math.round(performance.now() - request.startedAt),
        heldMs: 0,
        error,
        host: { ids: 0, ranges: 0 },
      },
      { cause: e },
    );
  }
}

/**
 * Runs the job's @RangeTotal once per run (null or undefined: no total),
 * within loaderTimeoutMs; a failure or no answer only costs percent and ETA.
 */
export async function recordTotal(
  deps: RunPlanDeps,
  def: JobDefinition,
  runId: string,
  params: Record<string, unknown> | undefined,
): Promise<void> {
  const method = def.total;
  if (!method) return;
  const timeoutMs = deps.options.loaderTimeoutMs;
  try {
    const value = await withinMs(
      timeoutMs,
      () => method.call({ job: def.name, runId, ...(params && { params }) }),
      true,
    );
    if (value === undefined || value === null) return;
    const total = Number(value);
    if (!Number.isFinite(total) || total < 0)
      throw new Error(`it returned ${show(value)}, not a count`);
    await deps.store.job(def.name).setTotal({ runId, total });
  } catch (e) {
    deps.logger.warn(
      e instanceof TimeLimitError
        ? TOTAL_TIMED_OUT(def.name, method.name, timeoutMs)
        : `Job "${def.name}": ${method.name} (@RangeTotal) failed: ${toWireError(e).message}; status() will have no percent or ETA.`,
    );
  }
}
