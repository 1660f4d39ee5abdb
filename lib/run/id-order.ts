import type { ID } from '../interfaces/range.interface'

const INTEGER = /^-?\d+$/

const numeric = (id: ID): boolean => typeof id === 'number' || INTEGER.test(id)

/**
 * Orders ids the way a database orders an integer or text key: numbers and
 * integer strings (bigint columns arrive as strings) numerically, other
 * strings by code unit (binary collation).
 */
export function compareIds(a: ID, b: ID): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  if (numeric(a) && numeric(b)) {
    if (!Number.isInteger(Number(a)) || !Number.isInteger(Number(b))) return Number(a) - Number(b)
    const x = BigInt(a)
    const y = BigInt(b)
    return x < y ? -1 : x > y ? 1 : 0
  }
  const x = String(a)
  const y = String(b)
  return x < y ? -1 : x > y ? 1 : 0
}
