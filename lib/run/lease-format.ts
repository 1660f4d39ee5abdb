import type { WireRange } from '../cluster/ipc.messages';
import type { RangeInfo } from '../parallel-worker.events';
import type { Lease } from '../store/coordination-store.interface';

/** What events say about a range. */
export const rangeInfo = (lease: Lease): RangeInfo => ({
  token: lease.token,
  attempt: lease.attempt,
  count: lease.range.ids.length,
  firstId: lease.range.ids[0],
  lastId: lease.range.lastId,
});

/** How logs name a range: its ids, token and attempt. */
export const describeLease = (lease: Lease): string => {
  const { ids, lastId } = lease.range;
  return `range of ${ids.length} ids ${ids.length ? `${ids[0]}..${ids[ids.length - 1]}` : `up to ${lastId}`} (token ${lease.token}, attempt ${lease.attempt})`;
};

/** A lease as it travels to a worker. */
export const toWire = (lease: Lease): WireRange => ({
  token: lease.token,
  attempt: lease.attempt,
  ids: lease.range.ids,
  prev: lease.range.prev,
  ...(lease.range.payload ? { payload: lease.range.payload } : {}),
  ...(lease.range.run !== undefined &&
    lease.range.run !== lease.runId && { run: lease.range.run }),
});
