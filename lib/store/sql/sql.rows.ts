import type {
  Lease,
  PreviousRun,
  RunCounters,
  StoreRunState,
  StoredHold,
  StoredPartition,
} from '../coordination-store.interface';
import type { SqlRow, SqlTransaction, SqlValue } from './sql-dialect.interface';

/** A job's row of `pw_jobs`, read at the start of a transaction. JSON columns stay text. */
export interface JobRow {
  id: number;
  declaredBy: string | null;
  runId: string | null;
  state: StoreRunState['state'];
  control: 'run' | 'pause';
  error: string | null;
  total: number | null;
  params: string | null;
  startedBy: string | null;
  startedOn: string | null;
  /** JSON text. */
  cursor: string;
  exhausted: boolean;
  /** How many partitions the job has (0: none; then `cursor` is its cursor). */
  partitions: number;
  token: number;
  counters: RunCounters;
  startedAt: number | null;
  endedAt: number | null;
  permitSecond: number | null;
  permitUsed: number;
  /** The run the active one replaced, as it ended. */
  previous?: PreviousRun;
  /** The parts of the state found lost (see sql-integrity): a run without `from` is refused until `from` or reset. */
  lost: string | null;
  /** Rows of each part of the state as the last call that counted it left them, in STATE_PARTS' order; null: no record yet. */
  recorded: (number | null)[];
  /** The run's current or last hold (over once `until` passed); absent when it had none. */
  hold?: StoredHold;
  /** Time the run was on hold in holds that ended before `hold` began. */
  heldMs: number;
  /** Store time from which the next health turn may be taken; null: now. */
  healthAt: number | null;
}

const numberOrNull = (v: unknown): number | null =>
  v === null || v === undefined ? null : Number(v);
const textOrNull = (v: unknown): string | null =>
  v === null || v === undefined ? null : (v as string);

export function jobRow(r: SqlRow): JobRow {
  return {
    id: Number(r.id),
    declaredBy: textOrNull(r.declared_by),
    runId: textOrNull(r.run_id),
    state: String(r.state) as JobRow['state'],
    control: r.control === 'pause' ? 'pause' : 'run',
    error: textOrNull(r.error),
    total: numberOrNull(r.total),
    params: textOrNull(r.params),
    startedBy: textOrNull(r.started_by),
    startedOn: textOrNull(r.started_on),
    cursor: String(r.cursor),
    exhausted: Number(r.exhausted) === 1,
    partitions: Number(r.partitions),
    token: Number(r.token),
    counters: {
      ids: Number(r.ids),
      completed: Number(r.completed),
      retried: Number(r.retried),
      dead: Number(r.dead),
      workersStarted: Number(r.workers_started),
      workersRestarted: Number(r.workers_restarted),
    },
    startedAt: numberOrNull(r.started_at),
    endedAt: numberOrNull(r.ended_at),
    permitSecond: numberOrNull(r.permit_second),
    permitUsed: Number(r.permit_used),
    lost: textOrNull(r.lost),
    recorded: [r.n_leases, r.n_pending, r.n_dead, r.n_partitions].map(
      numberOrNull,
    ),
    ...(r.hold_until !== null &&
      r.hold_until !== undefined && {
        hold: {
          reason: String(r.hold_reason),
          indicator: String(r.hold_indicator),
          since: Number(r.hold_since),
          until: Number(r.hold_until),
        },
      }),
    heldMs: Number(r.held_ms ?? 0),
    healthAt: numberOrNull(r.health_at),
    ...(r.previous_run_id !== null &&
      r.previous_run_id !== undefined && {
        previous: {
          runId: r.previous_run_id as string,
          state: String(r.previous_state) as PreviousRun['state'],
          ...(r.previous_error !== null &&
            r.previous_error !== undefined && {
              error: r.previous_error as string,
            }),
        },
      }),
  };
}

/** Counters as they start a run, by column. */
export const ZERO_COUNTERS = {
  ids: 0,
  completed: 0,
  retried: 0,
  dead: 0,
  workers_started: 0,
  workers_restarted: 0,
};

/** Sets columns of the job's row (names are the code's own, never a caller's). */
export async function setJob(
  tx: SqlTransaction,
  id: number,
  columns: Record<string, SqlValue>,
): Promise<void> {
  const names = Object.keys(columns);
  await tx.run(
    `UPDATE pw_jobs SET ${names.map((n) => `${n} = ?`).join(', ')} WHERE id = ?`,
    [...names.map((n) => columns[n]), id],
  );
}

export const LEASE_COLUMNS =
  'token, run_id, owner, attempt, deadline, ids, range';

export function leaseRow(r: SqlRow): Lease & { ids: number; text: string } {
  return {
    token: Number(r.token),
    runId: String(r.run_id),
    range: JSON.parse(String(r.range)),
    attempt: Number(r.attempt),
    owner: String(r.owner),
    deadline: Number(r.deadline),
    ids: Number(r.ids),
    text: String(r.range),
  };
}

/** A partition's row, with its cursor also as the JSON text it is compared as. */
export type PartitionRow = StoredPartition & { cursorText: string };

export function partitionRow(r: SqlRow): PartitionRow {
  return {
    after: JSON.parse(String(r.after)),
    upTo: JSON.parse(String(r.up_to)),
    cursor: JSON.parse(String(r.cursor)),
    cursorText: String(r.cursor),
    exhausted: Number(r.exhausted) === 1,
    ids: Number(r.ids),
    ...(r.loader !== null &&
      r.loader !== undefined && {
        loader: { owner: r.loader as string, until: Number(r.loader_until) },
      }),
  };
}

/** The job's partitions in order, or only the one numbered `idx`. */
export async function loadPartitions(
  tx: SqlTransaction,
  jobId: number,
  idx?: number,
): Promise<PartitionRow[]> {
  const rows =
    idx === undefined
      ? await tx.all(
          'SELECT * FROM pw_partitions WHERE job_id = ? ORDER BY idx',
          [jobId],
        )
      : await tx.all(
          'SELECT * FROM pw_partitions WHERE job_id = ? AND idx = ?',
          [jobId, idx],
        );
  return rows.map(partitionRow);
}
