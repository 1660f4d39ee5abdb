import { InvalidRangeError } from '../errors/invalid-range.error';
import type { ID } from '../interfaces/range.interface';
import * as m from '../parallel-worker.messages';
import type { StoredRange } from '../store/coordination-store.interface';
import { idOrder, type IdOrder, isIntegerId } from './id-order';

/**
 * Checks what a loader returned against the cursor it loaded after and turns
 * it into the range to commit, or null for "no more data". Throws
 * `InvalidRangeError` (naming the job and the value) before anything is handed out.
 */
export function toStoredRange(
  job: string,
  cursor: ID | null,
  value: unknown,
  order: IdOrder = NUMERIC,
): StoredRange | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) {
    if (value.length === 0) return null;
    const ids = checkIds(job, cursor, value, order);
    return { ids, lastId: ids[ids.length - 1], prev: cursor };
  }
  if (typeof value !== 'object')
    throw new InvalidRangeError(job, value, m.BAD_LOADER_SHAPE(job, value));
  const { lastId, idsRange, ...payload } = value as Record<string, unknown>;
  if (idsRange !== undefined && !Array.isArray(idsRange))
    throw new InvalidRangeError(job, value, m.BAD_LOADER_SHAPE(job, value));
  if (lastId === null || lastId === undefined) {
    if (!idsRange || idsRange.length === 0) return null;
    throw new InvalidRangeError(job, value, m.MISSING_LAST_ID(job, value));
  }
  const last = toId(job, lastId, 'as lastId', order);
  const ids = idsRange ? checkIds(job, cursor, idsRange, order) : [];
  if (ids.length > 0) checkMixed(job, order, ids[ids.length - 1], last);
  if (cursor !== null) checkMixed(job, order, cursor, last);
  if (ids.length > 0 && order.compare(last, ids[ids.length - 1]) < 0) {
    throw new InvalidRangeError(
      job,
      value,
      m.LAST_ID_BEFORE_IDS(job, last, ids[ids.length - 1]),
    );
  }
  if (cursor !== null && order.compare(last, cursor) <= 0)
    throw new InvalidRangeError(
      job,
      value,
      m.NOT_AFTER_CURSOR(job, last, cursor),
    );
  for (const [key, v] of Object.entries(payload)) checkJson(job, key, v);
  return Object.keys(payload).length > 0
    ? { ids, lastId: last, prev: cursor, payload }
    : { ids, lastId: last, prev: cursor };
}

function checkIds(
  job: string,
  cursor: ID | null,
  raw: unknown[],
  order: IdOrder,
): ID[] {
  const ids = raw.map((id, i) => toId(job, id, `at index ${i}`, order));
  // Mixed kinds first: an order across them would be meaningless, and "not sorted" would hide the real problem.
  for (let i = 1; i < ids.length; i++)
    checkMixed(job, order, ids[i - 1], ids[i]);
  if (ids.length > 0 && cursor !== null) {
    checkMixed(job, order, cursor, ids[0]);
    if (order.compare(ids[0], cursor) <= 0)
      throw new InvalidRangeError(
        job,
        raw,
        m.NOT_AFTER_CURSOR(job, ids[0], cursor),
      );
  }
  for (let i = 1; i < ids.length; i++) {
    const sign = order.compare(ids[i - 1], ids[i]);
    if (sign === 0)
      throw new InvalidRangeError(job, raw, m.DUPLICATE_IDS(job, ids[i], i));
    if (sign > 0)
      throw new InvalidRangeError(
        job,
        raw,
        m.UNSORTED_IDS(job, ids[i - 1], ids[i], i),
      );
  }
  return ids;
}

function toId(job: string, raw: unknown, where: string, order: IdOrder): ID {
  const id = typeof raw === 'bigint' ? raw.toString() : raw;
  if (!(
    (typeof id === 'number' && Number.isFinite(id)) ||
    (typeof id === 'string' && id.length > 0)
  )) {
    throw new InvalidRangeError(job, raw, m.BAD_ID(job, raw, where));
  }
  const rule = order.refuse(id);
  if (rule)
    throw new InvalidRangeError(
      job,
      raw,
      m.ID_REFUSED(job, raw, where, rule, order.name),
    );
  return id;
}

function checkMixed(job: string, order: IdOrder, a: ID, b: ID): void {
  if (!order.mixed(a, b)) return;
  const [integer, text] = isIntegerId(a) ? [a, b] : [b, a];
  throw new InvalidRangeError(job, [a, b], m.IDS_MIXED(job, integer, text));
}

const NUMERIC = idOrder('numeric');

function checkJson(job: string, key: string, value: unknown): void {
  try {
    JSON.stringify(value);
  } catch (e) {
    throw new InvalidRangeError(
      job,
      value,
      m.PAYLOAD_NOT_JSON(job, key, (e as Error).message),
    );
  }
}
