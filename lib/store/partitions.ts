import type {
  PartitionBounds,
  StoredPartition,
} from './coordination-store.interface';

/** Partitions as a store first keeps them: each cursor at its partition's start. */
export const freshPartitions = (bounds: PartitionBounds[]): StoredPartition[] =>
  bounds.map(({ after, upTo }) => ({
    after,
    upTo,
    cursor: after,
    exhausted: false,
    ids: 0,
  }));

/** A new run goes over every partition again from its cursor (new rows only). */
export function restartPartitions(parts: StoredPartition[]): void {
  for (const p of parts) {
    p.exhausted = false;
    p.ids = 0;
    delete p.loader;
  }
}

/**
 * The partition `owner` should load next: not exhausted, not one it loads
 * already, not one another host is loading; the fewest ids handed out first.
 * `wait` while every partition left is being loaded; `exhausted` when none is left.
 */
export function pickPartition(
  parts: StoredPartition[],
  owner: string,
  now: number,
  loading: number[] = [],
): number | 'wait' | 'exhausted' {
  let pick = -1;
  let left = false;
  parts.forEach((p, i) => {
    if (p.exhausted) return;
    left = true;
    if (loading.includes(i)) return;
    if (p.loader && p.loader.owner !== owner && p.loader.until > now) return;
    if (pick < 0 || p.ids < parts[pick].ids) pick = i;
  });
  if (pick >= 0) return pick;
  return left ? 'wait' : 'exhausted';
}

/** The owner's partitions stay its own to load until `until`. */
export function renewLoader(
  parts: StoredPartition[] | undefined,
  owner: string,
  until: number,
): void {
  for (const p of parts ?? [])
    if (p.loader?.owner === owner) p.loader.until = until;
}

/** The owner left: the partitions it was loading are free for others. */
export function dropLoader(
  parts: StoredPartition[] | undefined,
  owner: string,
): void {
  for (const p of parts ?? []) if (p.loader?.owner === owner) delete p.loader;
}
