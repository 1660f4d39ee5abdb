import { InvalidRangeError } from '../errors/invalid-range.error'
import type { ID } from '../interfaces/range.interface'
import * as m from '../parallel-worker.messages'
import type { StoredRange } from '../store/coordination-store.interface'
import { compareIds } from './id-order'

/**
 * Checks what a loader returned against the cursor it loaded after and turns
 * it into the range to commit, or null for "no more data". Throws
 * `InvalidRangeError` (naming the job and the value) before anything is handed out.
 */
export function toStoredRange(job: string, cursor: ID | null, value: unknown): StoredRange | null {
  if (value === null || value === undefined) return null
  if (Array.isArray(value)) {
    if (value.length === 0) return null
    const ids = checkIds(job, cursor, value)
    return { ids, lastId: ids[ids.length - 1], prev: cursor }
  }
  if (typeof value !== 'object') throw new InvalidRangeError(job, value, m.BAD_LOADER_SHAPE(job, value))
  const { lastId, idsRange, ...payload } = value as Record<string, unknown>
  if (idsRange !== undefined && !Array.isArray(idsRange)) throw new InvalidRangeError(job, value, m.BAD_LOADER_SHAPE(job, value))
  if (lastId === null || lastId === undefined) {
    if (!idsRange || idsRange.length === 0) return null
    throw new InvalidRangeError(job, value, m.MISSING_LAST_ID(job, value))
  }
  const last = toId(job, lastId, 'as lastId')
  const ids = idsRange ? checkIds(job, cursor, idsRange) : []
  if (ids.length > 0 && compareIds(last, ids[ids.length - 1]) < 0) {
    throw new InvalidRangeError(job, value, m.LAST_ID_BEFORE_IDS(job, last, ids[ids.length - 1]))
  }
  if (cursor !== null && compareIds(last, cursor) <= 0) throw new InvalidRangeError(job, value, m.NOT_AFTER_CURSOR(job, last, cursor))
  for (const [key, v] of Object.entries(payload)) checkJson(job, key, v)
  return Object.keys(payload).length > 0 ? { ids, lastId: last, prev: cursor, payload } : { ids, lastId: last, prev: cursor }
}

function checkIds(job: string, cursor: ID | null, raw: unknown[]): ID[] {
  const ids = raw.map((id, i) => toId(job, id, `at index ${i}`))
  if (ids.length > 0 && cursor !== null && compareIds(ids[0], cursor) <= 0) {
    throw new InvalidRangeError(job, raw, m.NOT_AFTER_CURSOR(job, ids[0], cursor))
  }
  for (let i = 1; i < ids.length; i++) {
    const order = compareIds(ids[i - 1], ids[i])
    if (order === 0) throw new InvalidRangeError(job, raw, m.DUPLICATE_IDS(job, ids[i], i))
    if (order > 0) throw new InvalidRangeError(job, raw, m.UNSORTED_IDS(job, ids[i - 1], ids[i], i))
  }
  return ids
}

function toId(job: string, id: unknown, where: string): ID {
  if (typeof id === 'bigint') return id.toString()
  if ((typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id.length > 0)) return id
  throw new InvalidRangeError(job, id, m.BAD_ID(job, id, where))
}

function checkJson(job: string, key: string, value: unknown): void {
  try {
    JSON.stringify(value)
  } catch (e) {
    throw new InvalidRangeError(job, value, m.PAYLOAD_NOT_JSON(job, key, (e as Error).message))
  }
}
