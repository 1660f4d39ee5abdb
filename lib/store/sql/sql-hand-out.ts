import type { ID } from '../../interfaces/range.interface';
import type {
  Claim,
  CommitResult,
  StoredRange,
} from '../coordination-store.interface';
import { pickPartition } from '../partitions';
import { holdWait } from '../holds';
import { holdAt } from '../memory-job-state';
import type { SqlTransaction, SqlValue } from './sql-dialect.interface';
import {
  LEASE_COLUMNS,
  leaseRow,
  loadPartitions,
  type JobRow,
} from './sql.rows';
import {
  lease,
  leaseOf,
  present,
  remember,
  replayed,
  tokens,
} from './sql-leases';

/*
 * Claims and commits: how the SQL store hands ranges out, each inside the
 * transaction the store opened on the job's locked row.
 */

/** How long a host waits before asking again when only others' leases or later retries are left. */
const WAIT_MS = 100;

export async function claimIn(
  tx: SqlTransaction,
  s: JobRow,
  owner: string,
  leaseMs: number,
  request?: string,
  loading?: number[],
): Promise<Claim> {
  if (s.state === 'failed')
    return { type: 'failed', error: s.error ?? 'failed' };
  if (s.state === 'stopped') return { type: 'cancelled' };
  if (s.state !== 'running' || !s.runId) return { type: 'done' };
  const now = tx.now;
  await present(tx, s.id, owner, now + leaseMs);
  const again = await replayed(tx, s.id, owner, request);
  if (again?.type === 'lease') {
    const held = await tx.get(
      `SELECT ${LEASE_COLUMNS} FROM pw_leases WHERE job_id = ? AND token = ? AND owner = ?`,
      [s.id, again.token, owner],
    );
    if (held)
      return { type: 'lease', lease: leaseOf(held), reason: again.reason };
  }
  if (s.control === 'pause') return { type: 'wait', retryInMs: WAIT_MS };
  // On hold: nothing is handed out (no expired lease, no due retry) until it ends.
  const hold = holdAt(s, now);
  if (hold) return { type: 'wait', retryInMs: holdWait(hold, now) };
  const claim = await claimNow(tx, s, owner, leaseMs, loading);
  if (claim.type === 'lease')
    await remember(tx, s.id, owner, request, {
      type: 'lease',
      token: claim.lease.token,
      reason: claim.reason,
    });
  return claim;
}

async function claimNow(
  tx: SqlTransaction,
  s: JobRow,
  owner: string,
  leaseMs: number,
  loading?: number[],
): Promise<Claim> {
  const now = tx.now;
  const expired = await tx.get(
    `DELETE FROM pw_leases WHERE job_id = ? AND token =
      (SELECT e.token FROM pw_leases e WHERE e.job_id = ? AND e.deadline <= ? ORDER BY e.deadline, e.token LIMIT 1)
      RETURNING ${LEASE_COLUMNS}`,
    [s.id, s.id, now],
  );
  if (expired) {
    const old = leaseRow(expired);
    const leased = await lease(tx, s, old.text, old.ids, {
      attempt: old.attempt + 1,
      owner,
      leaseMs,
      retried: true,
    });
    return { type: 'lease', lease: leased, reason: 'expired' };
  }
  const due = await tx.get(
    `DELETE FROM pw_pending WHERE id =
      (SELECT p.id FROM pw_pending p WHERE p.job_id = ? AND p.due <= ? ORDER BY p.due, p.id LIMIT 1)
      RETURNING attempt, reason, ids, range`,
    [s.id, now],
  );
  if (due) {
    const leased = await lease(tx, s, String(due.range), Number(due.ids), {
      attempt: Number(due.attempt),
      owner,
      leaseMs,
    });
    return {
      type: 'lease',
      lease: leased,
      reason: due.reason as 'retry' | 'released',
    };
  }
  if (s.partitions > 0) {
    const parts = await loadPartitions(tx, s.id);
    const hosts = await tx.get(
      'SELECT COUNT(*) AS n FROM pw_hosts WHERE job_id = ? AND until > ?',
      [s.id, now],
    );
    const pick = pickPartition(parts, owner, now, loading, Number(hosts?.n));
    if (typeof pick === 'number') {
      await tx.run(
        'UPDATE pw_partitions SET loader = ?, loader_until = ? WHERE job_id = ? AND idx = ?',
        [owner, now + leaseMs, s.id, pick],
      );
      return { type: 'load', cursor: parts[pick].cursor, partition: pick };
    }
    if (pick === 'wait') return { type: 'wait', retryInMs: WAIT_MS };
  } else if (!s.exhausted)
    return { type: 'load', cursor: JSON.parse(s.cursor) };
  const next = await tx.get(
    `SELECT (SELECT MIN(l.deadline) FROM pw_leases l WHERE l.job_id = ?) AS lease,
      (SELECT MIN(p.due) FROM pw_pending p WHERE p.job_id = ?) AS due`,
    [s.id, s.id],
  );
  const times = [next?.lease, next?.due]
    .filter((t) => t !== null && t !== undefined)
    .map(Number);
  if (times.length === 0) return { type: 'done' };
  return {
    type: 'wait',
    retryInMs: Math.max(1, Math.min(WAIT_MS, Math.min(...times) - now)),
  };
}

export async function commitIn(
  tx: SqlTransaction,
  s: JobRow,
  c: {
    job: string;
    owner: string;
    expected: ID | null;
    ranges: StoredRange[];
    leaseMs: number;
    request?: string;
    partition?: number;
  },
): Promise<CommitResult> {
  const { owner, ranges, partition } = c;
  const again = await replayed(tx, s.id, owner, c.request);
  if (again?.type === 'leased')
    return {
      type: 'leased',
      due: again.due,
      leases: ranges.map((range, i) => ({
        token: again.first + i,
        attempt: 1,
        runId: again.runId,
        range,
        owner,
        deadline: again.deadline,
      })),
    };
  if (partition === undefined ? s.partitions > 0 : !partOf(s, partition))
    throw new Error(
      `Job "${c.job}": a commit for partition ${partition} of a job with ${s.partitions || 'no'} partitions; hosts of different versions of the app may be sharing the store.`,
    );
  const now = tx.now;
  const part =
    partition === undefined
      ? undefined
      : (await loadPartitions(tx, s.id, partition))[0];
  const cursor = part ? part.cursorText : s.cursor;
  const conflict = (): CommitResult => ({
    type: 'conflict',
    cursor: JSON.parse(cursor),
  });
  const expected = JSON.stringify(c.expected);
  // Another host loads the partition now (it took it over): this load is thrown away, as when the cursor moved.
  const by = part?.loader;
  if (
    s.state !== 'running' ||
    cursor !== expected ||
    (by && by.owner !== owner && by.until > now)
  )
    return conflict();
  if (ranges.length === 0) {
    if (part)
      await tx.run(
        'UPDATE pw_partitions SET exhausted = 1, loader = NULL, loader_until = NULL WHERE job_id = ? AND idx = ?',
        [s.id, partition as number],
      );
    else await tx.run('UPDATE pw_jobs SET exhausted = 1 WHERE id = ?', [s.id]);
    return { type: 'exhausted' };
  }
  // On hold: loaded ranges are not leased; the host claims, which waits until the hold ends.
  if (holdAt(s, now)) return conflict();
  const next = JSON.stringify(ranges[ranges.length - 1].lastId);
  const deadline = now + c.leaseMs;
  const first = tokens(s, ranges.length, now);
  if (part)
    await tx.run(
      'UPDATE pw_partitions SET cursor = ?, ids = ids + ?, loader = ?, loader_until = ? WHERE job_id = ? AND idx = ?',
      [
        next,
        ranges.reduce((n, r) => n + r.ids.length, 0),
        owner,
        deadline,
        s.id,
        partition as number,
      ],
    );
  // The cursor and the token counter in one statement; `due` read in it too: an expired lease or a due retry waits.
  const moved = await tx.get(
    `UPDATE pw_jobs SET token = ?${part ? '' : ', cursor = ?'} WHERE id = ?
      RETURNING EXISTS (SELECT 1 FROM pw_leases l WHERE l.job_id = pw_jobs.id AND l.deadline <= ?)
        OR EXISTS (SELECT 1 FROM pw_pending p WHERE p.job_id = pw_jobs.id AND p.due <= ?) AS due`,
    part ? [s.token, s.id, now, now] : [s.token, next, s.id, now, now],
  );
  const due = Number(moved?.due) === 1;
  await insertLeases(tx, s, owner, first, deadline, ranges);
  const runId = s.runId as string;
  await remember(tx, s.id, owner, c.request, {
    type: 'leased',
    first,
    due,
    deadline,
    runId,
  });
  return {
    type: 'leased',
    leases: ranges.map((range, i) => ({
      token: first + i,
      attempt: 1,
      runId,
      range,
      owner,
      deadline,
    })),
    due,
  };
}

/** Rows one INSERT of new leases takes at most: statements of 1, 2, 4 … LEASE_ROWS rows, each prepared once. */
const LEASE_ROWS = 32;

/**
 * The leases of a commit, a few multi-row INSERTs: each range's JSON bound as
 * a parameter of its own (kept exactly as sent), no JSON array for the
 * database to take apart.
 */
async function insertLeases(
  tx: SqlTransaction,
  s: JobRow,
  owner: string,
  first: number,
  deadline: number,
  ranges: StoredRange[],
): Promise<void> {
  for (let at = 0; at < ranges.length;) {
    let rows = 1;
    while (rows * 2 <= Math.min(LEASE_ROWS, ranges.length - at)) rows *= 2;
    const params: SqlValue[] = [];
    for (let i = at; i < at + rows; i++)
      params.push(
        s.id,
        first + i,
        s.runId,
        owner,
        1,
        deadline,
        ranges[i].ids.length,
        JSON.stringify(ranges[i]),
      );
    await tx.run(INSERT_LEASES[rows], params);
    at += rows;
  }
}

/** The INSERT of `n` leases, by `n`. */
const INSERT_LEASES: Record<number, string> = {};
for (let n = 1; n <= LEASE_ROWS; n *= 2)
  INSERT_LEASES[n] =
    `INSERT INTO pw_leases (job_id, ${LEASE_COLUMNS}) VALUES ${Array(n).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;

/** The job is split into partitions and `partition` is one of them. */
const partOf = (s: JobRow, partition: number): boolean =>
  Number.isInteger(partition) && partition >= 0 && partition < s.partitions;
