import { SetMetadata } from '@nestjs/common';
import {
  DEFAULT_JOB,
  RANGE_HANDLER_METADATA,
} from '../parallel-worker.constants';

/**
 * Marks the method that processes one range of a job: it gets
 * `{ idsRange, lastId, ...payload }` and a `RangeContext`. Runs in the workers
 * (in the primary with `workers: 0`). A throw fails the range, which is retried.
 *
 * @param job job name; `'default'` when omitted
 */
export const RangeHandler = (job: string = DEFAULT_JOB): MethodDecorator =>
  SetMetadata(RANGE_HANDLER_METADATA, job);
