import { InvalidRangeError } from '../errors/invalid-range.error';
import type { ID } from '../interfaces/range.interface';
import type { JobDefinition } from '../job.registry';
import { BAD_PARTITIONS, show } from '../parallel-worker.messages';
import type { PartitionBounds } from '../store/coordination-store.interface';
import type { IdOrder } from './id-order';
import { withinMs } from './time-limit';

const isId = (v: unknown): v is ID =>
  (typeof v === 'number' && Number.isSafeInteger(v)) ||
  (typeof v === 'string' && v !== '');

/**
 * Calls the job's `@RangePartitions` method and turns what it returned into
 * partition bounds in id order, starting after `floor` (the job's cursor, or
 * `from`): partitions that end at or before it are done already and left
 * out; the first one left starts after it. Throws `InvalidRangeError`, naming
 * the job, the method and the value, for anything it cannot use, and
 * `TimeLimitError` when the method does not answer within `timeoutMs`.
 */
export async function planPartitions(
  def: JobDefinition,
  runId: string,
  order: IdOrder,
  floor: ID | null,
  params?: Record<string, unknown>,
  timeoutMs = 0,
): Promise<PartitionBounds[]> {
  const method = def.partitions;
  if (!method) return [];
  const value = await withinMs(timeoutMs, () =>
    method.call({ job: def.name, runId, ...(params && { params }) }),
  );
  const bad = (why: string): never => {
    throw new InvalidRangeError(
      def.name,
      value,
      BAD_PARTITIONS(def.name, method.name, why),
    );
  };
  const bounds =
    method.count !== undefined
      ? split(value, method.count, bad)
      : checked(value, order, bad);
  return clip(bounds, order, floor);
}

/** `{ min, max }` of integer ids into `count` equal partitions (fewer when there are fewer ids). */
function split(
  value: unknown,
  count: number,
  bad: (why: string) => never,
): PartitionBounds[] {
  if (typeof value !== 'object' || value === null)
    return bad(`returned ${show(value)}, not { min, max }`);
  const { min, max } = value as { min?: unknown; max?: unknown };
  // An empty table (min and max null): one partition for whatever comes.
  if (min === null && max === null) return [{ after: null, upTo: null }];
  const lo = Number(min);
  const hi = Number(max);
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi)
    return bad(
      `returned min ${show(min)} and max ${show(max)}, not two whole numbers with min <= max`,
    );
  const n = Math.min(count, hi - lo + 1);
  const size = Math.ceil((hi - lo + 1) / n);
  return Array.from({ length: n }, (_, i) => ({
    after: i === 0 ? null : lo - 1 + i * size,
    upTo: i === n - 1 ? null : lo - 1 + (i + 1) * size,
  }));
}

/** `[{ after, upTo }, …]` as returned: in order, not overlapping, only the ends open. */
function checked(
  value: unknown,
  order: IdOrder,
  bad: (why: string) => never,
): PartitionBounds[] {
  if (!Array.isArray(value) || value.length === 0)
    return bad(
      `returned ${show(value)}, not a non-empty array of { after, upTo }`,
    );
  return value.map((p: unknown, i) => {
    if (typeof p !== 'object' || p === null)
      return bad(`returned ${show(p)} at index ${i}, not { after, upTo }`);
    const { after, upTo } = p as { after?: unknown; upTo?: unknown };
    for (const [key, v] of [
      ['after', after],
      ['upTo', upTo],
    ] as const)
      if (v !== null && !isId(v))
        bad(`returned ${key} ${show(v)} at index ${i}, not an id or null`);
    if (after === null && i > 0)
      bad(
        `returned after null at index ${i}; only the first partition starts at the first id`,
      );
    if (upTo === null && i < value.length - 1)
      bad(
        `returned upTo null at index ${i}; only the last partition runs to the last id`,
      );
    if (
      after !== null &&
      upTo !== null &&
      order.compare(after as ID, upTo as ID) >= 0
    )
      bad(
        `returned after ${show(after)} not below upTo ${show(upTo)} at index ${i}`,
      );
    const before = i > 0 ? (value[i - 1] as { upTo?: unknown }).upTo : null;
    const step =
      i > 0 && before !== null && isId(before)
        ? order.compare(after as ID, before)
        : 0;
    if (step < 0)
      bad(
        `returned partitions that overlap: index ${i} starts after ${show(after)}, before the end ${show(before)} of index ${i - 1}`,
      );
    // Ids between two partitions belong to neither: no loader call would ever return them.
    if (step > 0)
      bad(
        `returned partitions with a gap: index ${i - 1} ${show(value[i - 1])} ends at ${show(before)} and index ${i} ${show(p)} starts after ${show(after)}, so ids in (${show(before)}, ${show(after)}] would never be handled; start index ${i} after ${show(before)}`,
      );
    return { after: after as ID | null, upTo: upTo as ID | null };
  });
}

function clip(
  bounds: PartitionBounds[],
  order: IdOrder,
  floor: ID | null,
): PartitionBounds[] {
  if (floor === null) return bounds;
  const left = bounds.filter(
    (p) => p.upTo === null || order.compare(p.upTo, floor) > 0,
  );
  // Every partition ends at or before the floor: the last one stays, with nothing in it.
  if (left.length === 0)
    return [{ after: floor, upTo: bounds[bounds.length - 1].upTo }];
  const [first] = left;
  if (first.after === null || order.compare(first.after, floor) < 0)
    left[0] = { after: floor, upTo: first.upTo };
  return left;
}
