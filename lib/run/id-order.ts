import type { IdOrderOption } from '../interfaces/parallel-worker-options.interface';
import type { ID } from '../interfaces/range.interface';

const INTEGER = /^-?\d+$/;

/** A non-negative integer written the one way a database writes it: "0", or digits not starting with 0. */
function plainDigits(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  const first = s.charCodeAt(0);
  if (first === 48) return n === 1;
  if (first < 49 || first > 57) return false;
  for (let i = 1; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** True for an id ordered as a number: a number, or an integer string (bigint columns arrive as strings). */
export const isIntegerId = (id: ID): boolean =>
  typeof id === 'number' || INTEGER.test(id);

/** Numbers and integer strings, numerically (callers refuse anything else first). */
function numerically(a: ID, b: ID): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  // Bigint columns: digits without a sign or leading zero order by length, then as text.
  if (
    typeof a === 'string' &&
    typeof b === 'string' &&
    plainDigits(a) &&
    plainDigits(b)
  ) {
    return a.length !== b.length
      ? a.length - b.length
      : a < b
        ? -1
        : a > b
          ? 1
          : 0;
  }
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** By UTF-16 code unit: JavaScript's own `<`. */
const byCodeUnit = (a: string, b: string): number =>
  a < b ? -1 : a > b ? 1 : 0;

/**
 * By Unicode code point (UTF-8 byte order, as a binary collation): the same
 * as code units except that characters above U+FFFF (surrogate pairs) come
 * after U+E000..U+FFFF.
 */
function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const fix = (u: number) =>
      u >= 0xe000 ? u - 0x800 : u >= 0xd800 ? u + 0x2000 : u;
    return fix(x) - fix(y);
  }
  return a.length - b.length;
}

/**
 * Orders ids the way the module's default does: numbers and integer strings
 * numerically, other strings by code unit (integers before them).
 */
export function compareIds(a: ID, b: ID): number {
  const ai = isIntegerId(a);
  const bi = isIntegerId(b);
  if (ai && bi) return numerically(a, b);
  if (ai !== bi) return ai ? -1 : 1;
  return byCodeUnit(String(a), String(b));
}

/** How one job's ids are ordered, and which ids that order refuses. */
export interface IdOrder {
  readonly name: string;
  compare(a: ID, b: ID): number;
  /** Why `id` cannot be in this order (a rule, for the error), or undefined. */
  refuse(id: ID): 'not-integer' | 'unsafe' | 'not-string' | undefined;
  /** Why `a` and `b` cannot both be in this order ('mixed'), or undefined. */
  mixed(a: ID, b: ID): boolean;
}

/** The `idOrder` option as an order: 'numeric' (the default), 'text', 'binary' or the app's comparator. */
export function idOrder(option: IdOrderOption = 'numeric'): IdOrder {
  if (typeof option === 'function') {
    return {
      name: 'the idOrder comparator',
      compare: option,
      refuse: () => undefined,
      mixed: () => false,
    };
  }
  if (option === 'text' || option === 'binary') {
    const compare = option === 'text' ? byCodeUnit : byCodePoint;
    return {
      name: `idOrder '${option}'`,
      compare: (a, b) => compare(a as string, b as string),
      refuse: (id) => (typeof id === 'string' ? undefined : 'not-string'),
      mixed: () => false,
    };
  }
  return {
    name: "idOrder 'numeric'",
    compare: compareIds,
    refuse: (id) =>
      typeof id !== 'number'
        ? undefined
        : !Number.isInteger(id)
          ? 'not-integer'
          : !Number.isSafeInteger(id)
            ? 'unsafe'
            : undefined,
    // Integers and text ids in one order compare by two rules at once; a job's ids are one or the other.
    mixed: (a, b) => isIntegerId(a) !== isIntegerId(b),
  };
}
