import type { ID } from '../../interfaces/range.interface';
import { RunRefusedError } from '../../errors/run-refused.error';
import {
  JOB_DECLARED_ELSEWHERE,
  RESET_BUSY,
  RUN_BUSY,
  STATE_LOST_PART,
} from '../../parallel-worker.messages';
import type {
  PartitionBounds,
  RunRecord,
  RunStart,
  StartRunResult,
  StoredRange,
} from '../coordination-store.interface';
import { refuseOtherApp } from '../declaration';
import { isLetter } from '../dead-letter-key';
import type { DeadLetterKey } from '../job-store.interface';
import type { SqlTransaction, SqlValue } from './sql-dialect.interface';
import { setJob, ZERO_COUNTERS, type JobRow } from './sql.rows';
import { windingDown } from './sql-integrity';
import { active, addPending } from './sql-leases';
import { replaces } from './sql-views';
import { NO_HOLD } from './sql-holds';

/*
 * A job's runs in the SQL store: starting or joining one, reset, dead letters
 * sent round again and the records of ended runs, each inside the
 * transaction the store opened on the job's locked row.
 */

/** Tables of a job's run state, emptied by reset (dead letters and history stay). */
export const RUN_TABLES = [
  'pw_replies',
  'pw_partitions',
  'pw_pending',
  'pw_leases',
  'pw_hosts',
];

export async function startRunIn(
  tx: SqlTransaction,
  s: JobRow,
  r: {
    job: string;
    runId: string;
    from?: ID | null;
    declaredBy?: string;
    partitions?: PartitionBounds[];
    start?: RunStart;
    plannedFrom?: ID | null;
  },
): Promise<StartRunResult> {
  const { job, runId, from, declaredBy, partitions, start, plannedFrom } = r;
  if (
    declaredBy &&
    s.declaredBy &&
    s.declaredBy !== declaredBy &&
    from === undefined
  )
    throw new RunRefusedError(
      job,
      JOB_DECLARED_ELSEWHERE(job, s.declaredBy, declaredBy),
    );
  if (s.lost && from === undefined)
    throw new RunRefusedError(
      job,
      STATE_LOST_PART(job, s.runId, s.lost, 'sql'),
    );
  // A run failed for state lost stays active until its hosts left: `from` now would take their leases' ranges away
  // before any of them saw the loss.
  if (from !== undefined && (await windingDown(tx, s)))
    throw new RunRefusedError(job, RUN_BUSY(s.runId ?? '(lost)'));
  if (s.state === 'running' && s.runId) {
    if (from === undefined)
      return {
        runId: s.runId,
        joined: true,
        ...(s.params !== null && { params: s.params }),
      };
    if (await active(tx, s.id))
      throw new RunRefusedError(job, RUN_BUSY(s.runId));
  }
  // A plan is stored only against the cursor it was clipped at: a reset since then would have it skip ids.
  if (
    from === undefined &&
    plannedFrom !== undefined &&
    s.partitions === 0 &&
    (!partitions?.length || s.cursor !== JSON.stringify(plannedFrom))
  )
    return { replanFrom: JSON.parse(s.cursor) as ID | null };
  const columns: Record<string, SqlValue> = {};
  if (declaredBy) columns.declared_by = declaredBy;
  if (from !== undefined) {
    // What is left is the job's state again, as the user said where to go on from.
    columns.lost = null;
    columns.cursor = JSON.stringify(from);
    if (from === null)
      await tx.run('DELETE FROM pw_pending WHERE job_id = ?', [s.id]);
    await tx.run('DELETE FROM pw_partitions WHERE job_id = ?', [s.id]);
    columns.partitions = await storePartitions(tx, s.id, partitions);
  } else if (s.partitions > 0)
    // Kept from the last run: every partition is loaded again from its cursor (new rows only), by no one yet.
    await tx.run(
      'UPDATE pw_partitions SET exhausted = 0, ids = 0, loader = NULL, loader_until = NULL WHERE job_id = ?',
      [s.id],
    );
  else columns.partitions = await storePartitions(tx, s.id, partitions);
  await tx.run('DELETE FROM pw_replies WHERE job_id = ?', [s.id]);
  // The run replaced, when it had ended: a host that sees a cancel only now can tell it from a lost run.
  const ended =
    s.runId !== null &&
    (s.state === 'completed' || s.state === 'failed' || s.state === 'stopped');
  await setJob(tx, s.id, {
    ...columns,
    ...ZERO_COUNTERS,
    ...NO_HOLD,
    previous_run_id: ended ? s.runId : null,
    previous_state: ended ? s.state : null,
    previous_error: ended ? s.error : null,
    run_id: runId,
    state: 'running',
    control: 'run',
    total: null,
    error: null,
    exhausted: 0,
    started_at: tx.now,
    ended_at: null,
    params: start?.params ?? null,
    started_by: start?.startedBy ?? null,
    started_on: start?.host ?? null,
  });
  return { runId, joined: false };
}

/** Stores the partitions, each cursor at its start (bounds kept as the JSON sent); returns how many. */
async function storePartitions(
  tx: SqlTransaction,
  jobId: number,
  partitions: PartitionBounds[] | undefined,
): Promise<number> {
  for (const [idx, { after, upTo }] of (partitions ?? []).entries()) {
    const start = JSON.stringify(after ?? null);
    await tx.run(
      'INSERT INTO pw_partitions (job_id, idx, after, up_to, cursor) VALUES (?, ?, ?, ?, ?)',
      [jobId, idx, start, JSON.stringify(upTo ?? null), start],
    );
  }
  return partitions?.length ?? 0;
}
export async function resetIn(
  tx: SqlTransaction,
  s: JobRow,
  job: string,
  declaredBy?: string,
): Promise<void> {
  refuseOtherApp(job, s.declaredBy, declaredBy, 'reset');
  if (
    (s.state === 'running' || (await windingDown(tx, s))) &&
    (await active(tx, s.id))
  )
    throw new RunRefusedError(job, RESET_BUSY(s.runId ?? '(lost)'));
  for (const table of RUN_TABLES)
    await tx.run(`DELETE FROM ${table} WHERE job_id = ?`, [s.id]);
  await setJob(tx, s.id, {
    ...ZERO_COUNTERS,
    state: 'idle',
    control: 'run',
    cursor: 'null',
    exhausted: 0,
    partitions: 0,
    total: null,
    error: null,
    started_at: null,
    ended_at: null,
    lost: null,
  });
}

export async function retryDeadIn(
  tx: SqlTransaction,
  s: JobRow,
  job: string,
  declaredBy?: string,
  only?: DeadLetterKey,
): Promise<number> {
  refuseOtherApp(job, s.declaredBy, declaredBy, 'retryDead');
  const listed = await tx.all(
    only
      ? 'SELECT id, run_id, range FROM pw_dead_letters WHERE job_id = ? AND run_id = ? ORDER BY id'
      : 'SELECT id, run_id, range FROM pw_dead_letters WHERE job_id = ? ORDER BY id',
    only ? [s.id, only.runId] : [s.id],
  );
  const dead = only
    ? listed.filter((d) =>
        isLetter(
          {
            runId: String(d.run_id),
            range: JSON.parse(String(d.range)) as StoredRange,
          },
          only,
        ),
      )
    : listed;
  for (const d of dead) {
    const range = String(d.range);
    await addPending(tx, s.id, {
      runId: String(d.run_id),
      attempt: 1,
      due: tx.now,
      reason: 'retry',
      ids: (JSON.parse(range) as StoredRange).ids.length,
      range,
    });
  }
  if (only)
    for (const d of dead)
      await tx.run('DELETE FROM pw_dead_letters WHERE job_id = ? AND id = ?', [
        s.id,
        d.id as SqlValue,
      ]);
  else await tx.run('DELETE FROM pw_dead_letters WHERE job_id = ?', [s.id]);
  return dead.length;
}

export async function recordRunIn(
  tx: SqlTransaction,
  s: JobRow,
  record: RunRecord,
  keep: number,
): Promise<void> {
  const kept = await tx.get(
    'SELECT status FROM pw_history WHERE job_id = ? AND run_id = ?',
    [s.id, record.runId],
  );
  if (kept && !replaces(record.status, String(kept.status))) return;
  await tx.run(
    `INSERT INTO pw_history (job_id, run_id, seq, status, record)
      VALUES (?, ?, (SELECT COALESCE(MAX(h.seq), 0) + 1 FROM pw_history h WHERE h.job_id = ?), ?, ?)
      ON CONFLICT (job_id, run_id) DO UPDATE SET seq = excluded.seq, status = excluded.status, record = excluded.record`,
    [s.id, record.runId, s.id, record.status, JSON.stringify(record)],
  );
  await tx.run(
    `DELETE FROM pw_history WHERE job_id = ? AND run_id NOT IN
      (SELECT h.run_id FROM pw_history h WHERE h.job_id = ? ORDER BY h.seq DESC LIMIT ?)`,
    [s.id, s.id, Math.max(0, keep)],
  );
}
