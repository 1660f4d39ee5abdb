import { SetMetadata } from '@nestjs/common';
import {
  DEFAULT_JOB,
  RANGE_LOADER_METADATA,
} from '../parallel-worker.constants';

/**
 * Marks the method that loads the next range of a job: it gets the cursor
 * (`null` at the start) and a `LoadContext`, and returns sorted ids after the
 * cursor, a range object `{ lastId, idsRange?, ...payload }`, or `[]`/`null`
 * when there is nothing left. Runs in the primary only.
 *
 * @param job job name; `'default'` when omitted
 */
export const RangeLoader = (job: string = DEFAULT_JOB): MethodDecorator =>
  SetMetadata(RANGE_LOADER_METADATA, job);
