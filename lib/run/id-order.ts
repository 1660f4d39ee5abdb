import type { ID } from '../interfaces/range.interface'

const INTEGER = /^-?\d+$/

const numeric = (id: ID): boolean => typeof id === 'number' || INTEGER.test(id)

/** A non-negative integer written the one way a database writes it: "0", or digits not starting with 0. */
function plainDigits(s: string): boolean {
  const n = s.length
  if (n === 0) return false
  const first = s.charCodeAt(0)
  if (first === 48) return n === 1
  if (first < 49 || first > 57) return false
  for (let i = 1; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

/**
 * Orders ids the way a database orders an integer or text key: numbers and
 * integer strings (bigint columns arrive as strings) numerically, other
 * strings by code unit (binary collation).
 */
export function compareIds(a: ID, b: ID): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  // Bigint columns: digits without a sign or leading zero order by length, then as text.
  if (typeof a === 'string' && typeof b === 'string' && plainDigits(a) && plainDigits(b)) {
    return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0
  }
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
