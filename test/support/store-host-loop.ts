import type { CoordinationStore } from '../../lib/store/coordination-store.interface';

/**
 * A host's loop in miniature, straight on a store: claim; load ranges of 10
 * ids after the cursor (up to `last`); commit; a millisecond of handling; complete. Returns every range it
 * was leased (ids and token), so two hosts' can be compared.
 */
export async function hostLoop(
  store: CoordinationStore,
  job: string,
  owner: string,
  last: number,
  leaseMs: number,
): Promise<{ ids: number[]; token: number }[]> {
  const leased: { ids: number[]; token: number }[] = [];
  for (;;) {
    const claim = await store.job(job).claim({ owner, leaseMs });
    if (claim.type === 'done') return leased;
    if (claim.type === 'wait') {
      await new Promise((r) => setTimeout(r, claim.retryInMs));
      continue;
    }
    if (claim.type === 'lease') {
      leased.push({
        ids: claim.lease.range.ids as number[],
        token: claim.lease.token,
      });
      await store.job(job).complete({ owner, tokens: [claim.lease.token] });
      continue;
    }
    if (claim.type !== 'load')
      throw new Error(`unexpected claim ${claim.type}`);
    const after = (claim.cursor as number | null) ?? 0;
    const ids = Array.from(
      { length: Math.min(10, last - after) },
      (_, i) => after + 1 + i,
    );
    const result = await store.job(job).commit({
      owner,
      expected: claim.cursor,
      ranges: ids.length
        ? [{ ids, lastId: ids[ids.length - 1], prev: claim.cursor }]
        : [],
      leaseMs,
    });
    if (result.type !== 'leased') continue;
    for (const l of result.leases)
      leased.push({ ids: l.range.ids as number[], token: l.token });
    // The handlers' time: a real host is not in the store all the time, so other processes get the file between its
    // calls (without it, one process in a tight loop can hold SQLite's write lock through a whole run).
    await new Promise((r) => setTimeout(r, 1));
    await store
      .job(job)
      .complete({ owner, tokens: result.leases.map((l) => l.token) });
  }
}
