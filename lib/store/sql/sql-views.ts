import type {
  DeadLetter,
  RunRecord,
  StoreRunState,
} from '../coordination-store.interface';
import type { SqlTransaction } from './sql-dialect.interface';
import { loadPartitions, type JobRow } from './sql.rows';
import { active } from './sql-leases';
import { holdView } from '../holds';

/*
 * What the SQL store answers about a job (status, dead letters, history,
 * leases per host), each read in one transaction; `s` is undefined for a job
 * the database does not hold.
 */

export async function stateOf(
  tx: SqlTransaction,
  s: JobRow | undefined,
): Promise<StoreRunState> {
  if (!s)
    return {
      runId: null,
      state: 'idle',
      control: 'run',
      cursor: null,
      exhausted: false,
      counters: {
        ids: 0,
        completed: 0,
        retried: 0,
        dead: 0,
        workersStarted: 0,
        workersRestarted: 0,
      },
      leased: 0,
      active: false,
      retrying: 0,
      dead: 0,
      startedAt: null,
      endedAt: null,
      now: tx.now,
      heldMs: 0,
    };
  const parts = s.partitions > 0 ? await loadPartitions(tx, s.id) : undefined;
  const counts = await tx.get(
    `SELECT (SELECT COUNT(*) FROM pw_leases l WHERE l.job_id = ?) AS leased,
      (SELECT COUNT(*) FROM pw_pending p WHERE p.job_id = ?) AS retrying,
      (SELECT COUNT(*) FROM pw_dead_letters d WHERE d.job_id = ?) AS dead`,
    [s.id, s.id, s.id],
  );
  return {
    runId: s.runId,
    state: s.state,
    control: s.control,
    ...(s.total !== null && { total: s.total }),
    ...(s.error !== null && { error: s.error }),
    ...(s.params !== null && { params: s.params }),
    ...(s.startedBy !== null && { startedBy: s.startedBy }),
    ...(s.startedOn !== null && { startedOn: s.startedOn }),
    cursor: JSON.parse(s.cursor),
    exhausted: parts ? parts.every((p) => p.exhausted) : s.exhausted,
    ...(parts && {
      partitions: parts.map(({ cursorText: _, ...p }) => p),
    }),
    counters: s.counters,
    leased: Number(counts?.leased),
    active: s.state === 'running' && (await active(tx, s.id)),
    retrying: Number(counts?.retrying),
    dead: Number(counts?.dead),
    startedAt: s.startedAt,
    endedAt: s.endedAt,
    now: tx.now,
    ...(s.previous && { previous: s.previous }),
    ...holdView(s, tx.now),
  };
}

export async function deadLettersOf(
  tx: SqlTransaction,
  s: JobRow | undefined,
  page?: { offset: number; limit: number },
): Promise<DeadLetter[]> {
  if (!s || (page && page.limit <= 0)) return [];
  const select =
    'SELECT run_id, range, attempts, error, at FROM pw_dead_letters WHERE job_id = ? ORDER BY id';
  const rows = page
    ? await tx.all(`${select} LIMIT ? OFFSET ?`, [
        s.id,
        page.limit,
        Math.max(0, page.offset),
      ])
    : await tx.all(select, [s.id]);
  return rows.map((d) => ({
    runId: String(d.run_id),
    range: JSON.parse(String(d.range)),
    attempts: Number(d.attempts),
    error: JSON.parse(String(d.error)),
    at: Number(d.at),
  }));
}

export async function historyOf(
  tx: SqlTransaction,
  s: JobRow | undefined,
  limit: number,
): Promise<RunRecord[]> {
  if (!s || limit <= 0) return [];
  const rows = await tx.all(
    'SELECT record FROM pw_history WHERE job_id = ? ORDER BY seq DESC LIMIT ?',
    [s.id, limit],
  );
  return rows.map((r) => JSON.parse(String(r.record)) as RunRecord);
}

export async function leasesByOwnerOf(
  tx: SqlTransaction,
  s: JobRow | undefined,
): Promise<Record<string, number>> {
  const owners: Record<string, number> = {};
  if (!s) return owners;
  const rows = await tx.all(
    'SELECT owner, COUNT(*) AS n FROM pw_leases WHERE job_id = ? GROUP BY owner ORDER BY owner',
    [s.id],
  );
  for (const r of rows) owners[String(r.owner)] = Number(r.n);
  return owners;
}

/**
 * Whether a record of a run may replace the kept one of the same run: a
 * `completed` or `cancelled` record is the run's end and stays; `stopped`
 * (one host stopped) replaces only `stopped`.
 */
export function replaces(next: RunRecord['status'], kept: string): boolean {
  if (kept === 'completed' || kept === 'cancelled') return false;
  return next !== 'stopped' || kept === 'stopped';
}
