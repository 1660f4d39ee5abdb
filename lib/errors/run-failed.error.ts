import type { RunSummary } from '../interfaces/run-summary.interface';

/** `run()` rejects with it when the run ends as failed; `summary.status` is `'failed'`. */
export class RunFailedError extends Error {
  override readonly name = 'RunFailedError';

  constructor(
    readonly summary: RunSummary,
    options?: { cause?: unknown },
  ) {
    super(
      `Job "${summary.job}" failed (run ${summary.runId}): ${summary.error}`,
      options,
    );
  }
}
