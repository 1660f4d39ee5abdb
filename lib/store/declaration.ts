import { RunRefusedError } from '../errors/run-refused.error';
import { JOB_STEERED_ELSEWHERE } from '../parallel-worker.messages';

/**
 * Throws when an app's call on a job finds the job declared by another app
 * (another loader and handler). Not checked when the call names no app (the
 * CLI, a store user) or the job has no declaration stored yet (the first
 * run() stores one). `call` is the public method refused.
 */
export function refuseOtherApp(
  job: string,
  stored: string | null | undefined,
  declaredBy: string | undefined,
  call: string,
): void {
  if (declaredBy && stored && stored !== declaredBy)
    throw new RunRefusedError(
      job,
      JOB_STEERED_ELSEWHERE(job, stored, declaredBy, call),
    );
}
