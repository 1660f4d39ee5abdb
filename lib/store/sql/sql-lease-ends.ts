import type { FailOptions } from '../job-store.interface';
import { splitRange } from '../split-range';
import type { SqlTransaction } from './sql-dialect.interface';
import type { JobRow } from './sql.rows';
import { addPending, present, take } from './sql-leases';

/*
 * How the SQL store's leases end or go on: heartbeats, completions, failures
 * and releases, each inside the transaction the store opened on the job's
 * locked row.
 */

/** The dialect's subqueries over a JSON array's elements (see SqlDialect.elements). */
export interface Elements {
  integer: string;
  text: string;
}

export async function heartbeatIn(
  tx: SqlTransaction,
  s: JobRow,
  elements: Elements,
  owner: string,
  tokens: number[],
  leaseMs: number,
): Promise<number[]> {
  const deadline = tx.now + leaseMs;
  if (s.state === 'running') await present(tx, s.id, owner, deadline);
  // A host loading a partition slowly keeps it: others take another one meanwhile.
  if (s.partitions > 0)
    await tx.run(
      'UPDATE pw_partitions SET loader_until = ? WHERE job_id = ? AND loader = ?',
      [deadline, s.id, owner],
    );
  if (tokens.length === 0) return [];
  const renewed = await tx.all(
    `UPDATE pw_leases SET deadline = ? WHERE job_id = ? AND owner = ? AND token IN (SELECT e.value FROM ${elements.integer} e) RETURNING token`,
    [deadline, s.id, owner, JSON.stringify(tokens)],
  );
  const mine = new Set(renewed.map((r) => Number(r.token)));
  return tokens.filter((token) => !mine.has(token));
}

/** Counts the owner's leases done; a lease past its deadline is not the owner's to complete any more (the next claim hands it out again). */
export async function completeIn(
  tx: SqlTransaction,
  s: JobRow,
  elements: Elements,
  owner: string,
  tokens: number[],
): Promise<boolean[]> {
  const taken = await tx.all(
    // `+deadline`: found by token, never by scanning every live lease in deadline order.
    `DELETE FROM pw_leases WHERE job_id = ? AND owner = ? AND +deadline > ? AND token IN (SELECT e.value FROM ${elements.integer} e) RETURNING token, run_id, ids`,
    [s.id, owner, tx.now, JSON.stringify(tokens)],
  );
  let ids = 0;
  let completed = 0;
  const gone = new Set<number>();
  for (const lease of taken) {
    gone.add(Number(lease.token));
    if (lease.run_id === s.runId) {
      ids += Number(lease.ids);
      completed++;
    }
  }
  // Each lease counts once, for its first token in the list.
  const counted = tokens.map((token) => gone.delete(token));
  if (completed > 0)
    await tx.run(
      'UPDATE pw_jobs SET ids = ids + ?, completed = completed + ? WHERE id = ?',
      [ids, completed, s.id],
    );
  return counted;
}

export async function failIn(
  tx: SqlTransaction,
  s: JobRow,
  owner: string,
  token: number,
  options: FailOptions,
): Promise<'retry' | 'dead' | 'stale'> {
  // A partial failure counts its done part as complete counts a range: past the deadline, nothing (the lease expires).
  if (options.ids) {
    const held = await tx.get(
      'SELECT deadline FROM pw_leases WHERE job_id = ? AND token = ?',
      [s.id, token],
    );
    if (held && Number(held.deadline) <= tx.now) return 'stale';
  }
  const l = await take(tx, s.id, owner, token);
  if (!l) return 'stale';
  const current = l.runId === s.runId ? 1 : 0;
  // Part of the range failed: the rest is done, and only the failed ids go on.
  const range = options.ids
    ? JSON.stringify({ ...l.range, ids: options.ids })
    : l.text;
  const ids = options.ids ? options.ids.length : l.ids;
  const doneIds = current && options.ids ? l.ids - ids : 0;
  // The done part is a range that ended done; the failed ids go on as a range of their own.
  const donePart = doneIds > 0 ? 1 : 0;
  if (options.dead)
    await tx.run(
      'INSERT INTO pw_dead_letters (job_id, run_id, range, attempts, error, at) VALUES (?, ?, ?, ?, ?, ?)',
      [s.id, l.runId, range, l.attempt, JSON.stringify(options.error), tx.now],
    );
  else {
    // Split (a range that timed out): its halves go on in its place, as one retry, in id order (pending rows are
    // handed out by due time, then as inserted).
    const halves = options.split
      ? splitRange(options.ids ? { ...l.range, ids: options.ids } : l.range)
      : undefined;
    const retries = halves
      ? halves.map((h) => ({ ids: h.ids.length, range: JSON.stringify(h) }))
      : [{ ids, range }];
    for (const r of retries)
      await addPending(tx, s.id, {
        runId: l.runId,
        attempt: l.attempt + 1,
        due: tx.now + options.retryInMs,
        reason: 'retry',
        ...r,
      });
  }
  await tx.run(
    'UPDATE pw_jobs SET ids = ids + ?, completed = completed + ?, dead = dead + ?, retried = retried + ? WHERE id = ?',
    [
      doneIds,
      donePart,
      options.dead ? current : 0,
      options.dead ? 0 : current,
      s.id,
    ],
  );
  return options.dead ? 'dead' : 'retry';
}

export async function releaseIn(
  tx: SqlTransaction,
  s: JobRow,
  owner: string,
  tokens: number[],
): Promise<void> {
  for (const token of tokens) {
    const l = await take(tx, s.id, owner, token);
    if (l)
      await addPending(tx, s.id, {
        runId: l.runId,
        attempt: l.attempt,
        due: tx.now,
        reason: 'released',
        ids: l.ids,
        range: l.text,
      });
  }
}
