import { applyDecorators, SetMetadata } from '@nestjs/common';
import {
  DEFAULT_JOB,
  RANGE_LOADER_METADATA,
  RANGE_LOADER_OPTIONS_METADATA,
} from '../parallel-worker.constants';
import type { ParamsValidator } from '../interfaces/range.interface';

/** Options of `@RangeLoader`. */
export interface RangeLoaderOptions {
  /**
   * Checks `run(job, { params })` before anything starts: a class is
   * validated with class-validator (the app installs it; class-transformer
   * too for nested or converted properties); a function may throw, or return
   * `false` or a message, to refuse them. `run()` then rejects with
   * `InvalidParamsError`.
   */
  params?: ParamsValidator;
}

/**
 * Marks the method that loads the next range of a job: it gets the cursor
 * (`null` at the start) and a `LoadContext`, and returns sorted ids after the
 * cursor, a range object `{ lastId, idsRange?, ...payload }`, or `[]`/`null`
 * when there is nothing left. Runs in the primary only.
 *
 * @param job job name; `'default'` when omitted
 */
export const RangeLoader = (
  job: string = DEFAULT_JOB,
  options?: RangeLoaderOptions,
): MethodDecorator =>
  options
    ? applyDecorators(
        SetMetadata(RANGE_LOADER_METADATA, job),
        SetMetadata(RANGE_LOADER_OPTIONS_METADATA, options),
      )
    : SetMetadata(RANGE_LOADER_METADATA, job);
