import type { StoredRange } from './coordination-store.interface';

/**
 * The two ranges a range goes to its retry as when it is split
 * (`FailOptions.split`): the first half of its ids (the first one more when
 * their number is odd), after the range's own `prev` up to that half's last
 * id, and the rest, after that id up to the range's own `lastId`. Each keeps
 * the range's payload and the run that loaded it. Undefined for a range of
 * fewer than 2 ids: it is retried whole.
 */
export function splitRange(
  range: StoredRange,
): [StoredRange, StoredRange] | undefined {
  const { ids } = range;
  if (ids.length < 2) return undefined;
  const cut = Math.ceil(ids.length / 2);
  const edge = ids[cut - 1];
  return [
    { ...range, ids: ids.slice(0, cut), lastId: edge },
    { ...range, ids: ids.slice(cut), prev: edge },
  ];
}
