import type { Lease } from '../coordination-store.interface';
import type { SqlTransaction } from './sql-dialect.interface';
import { REPLY_SLOTS } from '../reply-slots';
import { LEASE_COLUMNS, leaseRow, type JobRow } from './sql.rows';

/*
 * The statements every store operation shares, each on the transaction it is
 * given: presence of hosts, fencing tokens, leases, pending ranges and the
 * answers kept for resent claims and commits.
 */

/** What a claim or a commit that leased something was answered, as kept in `pw_replies`. */
export type Reply =
  | { type: 'lease'; token: number; reason: 'expired' | 'retry' | 'released' }
  | {
      type: 'leased';
      first: number;
      due: boolean;
      deadline: number;
      runId: string;
    };

/** A live lease, or a host that took part within its lease time and has not left. */
export async function active(
  tx: SqlTransaction,
  jobId: number,
): Promise<boolean> {
  return !!(await tx.get(
    `SELECT 1 AS active WHERE EXISTS (SELECT 1 FROM pw_leases l WHERE l.job_id = ? AND l.deadline > ?)
      OR EXISTS (SELECT 1 FROM pw_hosts h WHERE h.job_id = ? AND h.until > ?)`,
    [jobId, tx.now, jobId, tx.now],
  ));
}

export async function present(
  tx: SqlTransaction,
  jobId: number,
  owner: string,
  until: number,
): Promise<void> {
  await tx.run(
    'INSERT INTO pw_hosts (job_id, owner, until) VALUES (?, ?, ?) ON CONFLICT (job_id, owner) DO UPDATE SET until = excluded.until',
    [jobId, owner, until],
  );
}

/**
 * The first of `n` new fencing tokens: from the job's counter, never below
 * the next millisecond of store time x 1000. Moves `s.token` on; the caller writes it with
 * the row's other changes.
 */
export function tokens(s: JobRow, n: number, now: number): number {
  // The next millisecond's floor: a counter lost in the very millisecond it issued a token still goes above it.
  const first = Math.max(s.token, (now + 1) * 1000) + 1;
  s.token = first + n - 1;
  return first;
}

/** Leases one range with the next token (`retried`: counted as a retry of the run). */
export async function lease(
  tx: SqlTransaction,
  s: JobRow,
  range: string,
  ids: number,
  o: { attempt: number; owner: string; leaseMs: number; retried?: boolean },
): Promise<Lease> {
  const token = tokens(s, 1, tx.now);
  const deadline = tx.now + o.leaseMs;
  await tx.run(
    'UPDATE pw_jobs SET token = ?, retried = retried + ? WHERE id = ?',
    [token, o.retried ? 1 : 0, s.id],
  );
  await tx.run(
    `INSERT INTO pw_leases (job_id, ${LEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    [s.id, token, s.runId, o.owner, o.attempt, deadline, ids, range],
  );
  return {
    token,
    runId: s.runId as string,
    range: JSON.parse(range),
    attempt: o.attempt,
    owner: o.owner,
    deadline,
  };
}

/** Removes and returns the owner's lease `token`, or undefined when it is no longer theirs. */
export async function take(
  tx: SqlTransaction,
  jobId: number,
  owner: string,
  token: number,
) {
  const row = await tx.get(
    `DELETE FROM pw_leases WHERE job_id = ? AND token = ? AND owner = ? RETURNING ${LEASE_COLUMNS}`,
    [jobId, token, owner],
  );
  return row ? leaseRow(row) : undefined;
}

export async function addPending(
  tx: SqlTransaction,
  jobId: number,
  p: {
    runId: string;
    attempt: number;
    due: number;
    reason: 'retry' | 'released';
    ids: number;
    range: string;
  },
): Promise<void> {
  await tx.run(
    'INSERT INTO pw_pending (job_id, run_id, attempt, due, reason, ids, range) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [jobId, p.runId, p.attempt, p.due, p.reason, p.ids, p.range],
  );
}

export async function replayed(
  tx: SqlTransaction,
  jobId: number,
  owner: string,
  request?: string,
): Promise<Reply | undefined> {
  if (request === undefined) return undefined;
  const row = await tx.get(
    'SELECT request, answer FROM pw_replies WHERE job_id = ? AND owner = ? AND slot = ?',
    [jobId, owner, slot(request)],
  );
  return row?.request === request
    ? (JSON.parse(String(row.answer)) as Reply)
    : undefined;
}

export async function remember(
  tx: SqlTransaction,
  jobId: number,
  owner: string,
  request: string | undefined,
  answer: Reply,
): Promise<void> {
  if (request === undefined) return;
  await tx.run(
    `INSERT INTO pw_replies (job_id, owner, slot, request, answer) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (job_id, owner, slot) DO UPDATE SET request = excluded.request, answer = excluded.answer`,
    [jobId, owner, slot(request), request, JSON.stringify(answer)],
  );
}

/** A request's place among the owner's last REPLY_SLOTS: hosts number their requests. */
const slot = (request: string): string => {
  const n = Number(request);
  return Number.isInteger(n) ? String(n % REPLY_SLOTS) : request;
};

export const leaseOf = (row: Record<string, unknown>): Lease => {
  const { ids: _, text: __, ...l } = leaseRow(row);
  return l;
};
