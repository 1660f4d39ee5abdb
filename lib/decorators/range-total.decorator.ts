import { SetMetadata } from '@nestjs/common';
import {
  DEFAULT_JOB,
  RANGE_TOTAL_METADATA,
} from '../parallel-worker.constants';

/**
 * Optional: marks the method that tells how many ids a run of the job will
 * handle (e.g. a `COUNT(*)`), so `status()` gives percent and ETA. Called
 * once per run, in the primary that starts it, with `{ job, runId, params? }`.
 *
 * @param job job name; `'default'` when omitted
 */
export const RangeTotal = (job: string = DEFAULT_JOB): MethodDecorator =>
  SetMetadata(RANGE_TOTAL_METADATA, job);
