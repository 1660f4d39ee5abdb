import { STATE_LOST_PART } from '../../parallel-worker.messages';
import type { SqlTransaction } from './sql-dialect.interface';
import { setJob, type JobRow } from './sql.rows';

/*
 * State lost in part, as the Redis store sees it: every writing call first
 * counts the rows of each part of the job's state and compares them with the
 * counts the last call recorded in the job's row, then records the counts it
 * leaves; all in the call's transaction, so no call of the store itself can
 * come between. A part with other counts lost rows to another program (rows
 * deleted, a table dropped and made again): the job is marked `lost` and its
 * active run fails "state lost"; only `from` or reset clear it. Not counted:
 * hosts and the answers kept for resent calls (rebuilt by the next calls; their
 * loss hands a range out twice at worst, never skips one), the history of
 * ended runs, and the columns of the job's row itself (a hold, the time
 * held, the health turn: no rows to count; a file upgraded from before them
 * has them at none, as a new run starts). Not seen: a file replaced or
 * restored while a process has it open (that process goes on with the file it
 * opened), and rows changed rather than deleted.
 */

/** The parts counted, by the name the "state lost" error gives, with the table and the job's column of their count. */
const STATE_PARTS = [
  { part: 'leases', table: 'pw_leases', column: 'n_leases' },
  { part: 'retries', table: 'pw_pending', column: 'n_pending' },
  { part: 'dead letters', table: 'pw_dead_letters', column: 'n_dead' },
  { part: 'partitions', table: 'pw_partitions', column: 'n_partitions' },
];

/**
 * Which parts a call counts: `leases` for the calls of the hot path (commit,
 * complete, heartbeat), which change no other part, and count the one part
 * bounded by the work in flight (retries and dead letters may run to
 * thousands); `all` for every other call, so a part lost is seen at the next
 * claim at the latest (a host claims before its run can end `completed`).
 */
export type Scope = 'leases' | 'all';

const partsOf = (scope: Scope) =>
  scope === 'leases' ? STATE_PARTS.slice(0, 1) : STATE_PARTS;

const COUNTS = (scope: Scope) =>
  `SELECT ${partsOf(scope)
    .map(
      ({ table }, i) =>
        `(SELECT COUNT(*) FROM ${table} WHERE job_id = ?) AS n${i}`,
    )
    .join(', ')}`;

const RECORD = (scope: Scope) =>
  `UPDATE pw_jobs SET ${partsOf(scope)
    .map(
      ({ table, column }) =>
        `${column} = (SELECT COUNT(*) FROM ${table} WHERE job_id = pw_jobs.id)`,
    )
    .join(', ')} WHERE id = ?`;

const STATEMENTS = {
  leases: { counts: COUNTS('leases'), record: RECORD('leases') },
  all: { counts: COUNTS('all'), record: RECORD('all') },
};

/** How many rows each part of the job's state (of `scope`) holds, in STATE_PARTS' order. */
export async function countParts(
  tx: SqlTransaction,
  jobId: number,
  scope: Scope = 'all',
): Promise<number[]> {
  const parts = partsOf(scope);
  const row = await tx.get(
    STATEMENTS[scope].counts,
    parts.map(() => jobId),
  );
  return parts.map((_, i) => Number(row?.[`n${i}`]));
}

/** Compares the parts of `scope` with the record the last call left; marks the job lost when any differs. */
export async function checkParts(
  tx: SqlTransaction,
  s: JobRow,
  job: string,
  scope: Scope,
): Promise<void> {
  const kept = s.recorded;
  // No record yet (a job row just made, a file from before records): the call records one.
  if (partsOf(scope).every((_, i) => kept[i] === null)) return;
  const counts = await countParts(tx, s.id, scope);
  const lost = partsOf(scope)
    .filter((_, i) => kept[i] !== null && counts[i] !== kept[i])
    .map((p) => p.part);
  if (lost.length) await markLost(tx, s, job, lost.join(', '));
}

/** Records how many rows each part of `scope` holds now: the next call compares with these. */
export async function recordParts(
  tx: SqlTransaction,
  jobId: number,
  scope: Scope,
): Promise<void> {
  await tx.run(STATEMENTS[scope].record, [jobId]);
}

/**
 * Marks the job's state lost in `parts`; its active run (or `failRun`, with no
 * run state left to tell) fails "state lost". Changes `s` to match, so the
 * call goes on with the failed run.
 */
export async function markLost(
  tx: SqlTransaction,
  s: JobRow,
  job: string,
  parts: string,
  failRun = s.state === 'running',
): Promise<void> {
  s.lost = s.lost && s.lost !== parts ? `${s.lost}, ${parts}` : parts;
  const columns: Record<string, string | number | null> = { lost: s.lost };
  if (failRun) {
    s.state = 'failed';
    s.error = STATE_LOST_PART(job, s.runId, s.lost, 'sql');
    s.endedAt = tx.now;
    Object.assign(columns, {
      state: s.state,
      error: s.error,
      ended_at: s.endedAt,
    });
  }
  await setJob(tx, s.id, columns);
}

/**
 * A job row just made: rows left under its id by a row deleted from outside
 * (the database gave the id again) are a run's state lost in part (its
 * cursor and counters went with the row), as Redis sees META lost beside
 * other parts; its run fails "state lost". With nothing of a run left, only
 * rows no run needs (hosts, answers, history) are dropped: never the new job's.
 */
export async function madeAgain(
  tx: SqlTransaction,
  s: JobRow,
  job: string,
): Promise<JobRow> {
  if ((await countParts(tx, s.id)).some((n) => n > 0)) {
    const left = await tx.get(
      'SELECT run_id FROM pw_leases WHERE job_id = ? UNION ALL SELECT run_id FROM pw_pending WHERE job_id = ? LIMIT 1',
      [s.id, s.id],
    );
    if (left) {
      s.runId = String(left.run_id);
      await setJob(tx, s.id, { run_id: s.runId });
    }
    await markLost(tx, s, job, 'job row', true);
    return s;
  }
  for (const table of ['pw_hosts', 'pw_replies', 'pw_history'])
    await tx.run(`DELETE FROM ${table} WHERE job_id = ?`, [s.id]);
  return s;
}

/** The run failed for state lost and a host of it has not left yet (its leases are suspect: part of the state is gone). */
export async function windingDown(
  tx: SqlTransaction,
  s: JobRow,
): Promise<boolean> {
  if (s.state !== 'failed' || !s.lost) return false;
  return !!(await tx.get(
    'SELECT 1 AS present FROM pw_hosts WHERE job_id = ? AND until > ? LIMIT 1',
    [s.id, tx.now],
  ));
}
