import { SetMetadata } from '@nestjs/common';
import {
  DEFAULT_JOB,
  RANGE_PARTITIONS_METADATA,
} from '../parallel-worker.constants';

/** Options of `@RangePartitions`. */
export interface RangePartitionsOptions {
  /**
   * Split integer ids into this many equal partitions: the method then
   * returns `{ min, max }` (e.g. `SELECT min(id), max(id)`), and the last
   * partition runs on past `max`.
   */
  count?: number;
}

/**
 * Optional: marks the method that splits the job's ids into partitions, each
 * loaded on its own (in parallel on one host, and spread over hosts) with its
 * own cursor. It returns the bounds, `[{ after: null, upTo: 250000 }, { after:
 * 250000, upTo: null }, …]` (each partition holds the ids in `(after, upTo]`),
 * or `{ min, max }` with `{ count }`. Called by the primary that starts a run
 * when the job has no partitions stored yet (its first run, after `reset()`,
 * or a run with `from`), with `{ job, runId, params? }`; the partitions and their
 * cursors are then kept from run to run. The loader gets `ctx.partition` and
 * must return ids within it.
 *
 * @param job job name; `'default'` when omitted
 */
export const RangePartitions = (
  job: string = DEFAULT_JOB,
  options: RangePartitionsOptions = {},
): MethodDecorator => SetMetadata(RANGE_PARTITIONS_METADATA, { job, options });
