import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface';
import type { RunSummary } from '../interfaces/run-summary.interface';
import type { JobDefinition } from '../job.registry';
import {
  ENV_CONCURRENCY,
  ENV_JOB,
  ENV_RUN_ID,
  ENV_WORKER_ID,
} from '../parallel-worker.constants';
import type { ModuleLogger } from '../parallel-worker.logger';
import { WorkerRunner } from './worker-runner';

/** `run()` in a forked worker: serves the ranges the primary sends until it is drained. */
export class WorkerRole {
  private runner?: WorkerRunner;

  constructor(
    private readonly options: ResolvedParallelWorkerOptions,
    private readonly logger: ModuleLogger,
  ) {}

  get serving(): boolean {
    return this.runner !== undefined;
  }

  async serve(
    requested: string | undefined,
    lookup: (name: string) => JobDefinition,
  ): Promise<RunSummary> {
    const name = process.env[ENV_JOB] as string;
    const runId = process.env[ENV_RUN_ID] as string;
    const startedAt = performance.now();
    const share = (
      ids: number,
      ranges: number,
      status: RunSummary['status'],
    ): RunSummary => ({
      job: name,
      runId,
      status,
      ids,
      ranges: { completed: ranges, retried: 0, dead: 0 },
      workers: { started: 0, restarted: 0 },
      durationMs: Math.round(performance.now() - startedAt),
      host: { ids, ranges },
    });
    // A main.ts that runs several jobs in turn: this worker serves only its own and lets the others pass.
    if (requested !== undefined && requested !== name)
      return share(0, 0, 'completed');
    if (this.runner)
      throw new Error(
        `Worker ${process.env[ENV_WORKER_ID]} is serving job "${name}" already; call run() once per worker.`,
      );
    // The primary's concurrency rules (it counts on it to tell which ranges may have started).
    const concurrency =
      Number(process.env[ENV_CONCURRENCY]) || this.options.concurrency;
    this.runner = new WorkerRunner(
      lookup(name),
      runId,
      process.env[ENV_WORKER_ID] as string,
      concurrency,
      this.logger,
    );
    const result = await this.runner.serve();
    return share(
      result.ids,
      result.ranges,
      result.drained ? 'completed' : 'stopped',
    );
  }

  /** Waits for the ranges in hand (for an app closing by itself, e.g. with shutdown hooks). */
  async idle(timeoutMs: number): Promise<void> {
    await this.runner?.idle(timeoutMs);
  }
}
