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
  hosts = 1,
): number | 'wait' | 'exhausted' {
  // A partition it does not hold yet only while it holds fewer than its share, so a host that joins later gets some.
  const { held, share } = shareOf(parts, owner, now, hosts);
  let pick = -1;
  let left = false;
  parts.forEach((p, i) => {
    if (p.exhausted) return;
    left = true;
    if (loading.includes(i)) return;
    const own = p.loader?.owner === owner;
    const free = !p.loader || p.loader.until <= now;
    if (!own && !(free && held < share)) return;
    if (pick < 0 || p.ids < parts[pick].ids) pick = i;
  });
  if (pick < 0 && held < share)
    pick = takeOver(parts, owner, now, loading, share);
  if (pick >= 0) return pick;
  return left ? 'wait' : 'exhausted';
}

/**
 * Nothing free, and `owner` has less than its share: the partition (fewest
 * ids first) of a host that loads more than its share, taken over (that
 * host's next commit there is refused), so a host that joined later gets its
 * share at once. -1 when there is none.
 */
function takeOver(
  parts: StoredPartition[],
  owner: string,
  now: number,
  loading: number[],
  share: number,
): number {
  const live = (p: StoredPartition) =>
    !p.exhausted && p.loader !== undefined && p.loader.until > now;
  const count = new Map<string, number>();
  for (const p of parts)
    if (live(p)) {
      const by = p.loader?.owner as string;
      count.set(by, (count.get(by) ?? 0) + 1);
    }
  let pick = -1;
  parts.forEach((p, i) => {
    const by = p.loader?.owner;
    if (!live(p) || loading.includes(i) || by === owner) return;
    if ((count.get(by as string) ?? 0) <= share) return;
    if (pick < 0 || p.ids < parts[pick].ids) pick = i;
  });
  return pick;
}

/** How many of the partitions left `owner` loads, and its share of them among `hosts` taking part. */
export function shareOf(
  parts: StoredPartition[],
  owner: string,
  now: number,
  hosts: number,
): { held: number; share: number } {
  const left = parts.filter((p) => !p.exhausted);
  const held = left.filter(
    (p) => p.loader?.owner === owner && p.loader.until > now,
  ).length;
  return { held, share: Math.ceil(left.length / Math.max(1, hosts)) };
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
