import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ParallelWorker } from '../parallel-worker';

export interface ParallelWorkerHealthOptions {
  /** A running (not paused) job whose ids done do not move for this long is stuck. Default `300000` (5 min). */
  stuckAfterMs?: number;
}

/**
 * A @nestjs/terminus health indicator: up while the coordination store
 * answers and no running job is stuck. List it in the providers of the module
 * that imports `TerminusModule` (with `ParallelWorkerModule.forRoot({ isGlobal: true })`
 * or in the same module) and call `isHealthy()` in a `@HealthCheck()`.
 */
@Injectable()
export class ParallelWorkerHealthIndicator {
  private readonly progress = new Map<
    string,
    { runId: string | null; ids: number; since: number }
  >();

  constructor(
    private readonly health: HealthIndicatorService,
    private readonly worker: ParallelWorker,
  ) {}

  async isHealthy<const Key extends string = 'parallel-worker'>(
    key: Key = 'parallel-worker' as Key,
    options: ParallelWorkerHealthOptions = {},
  ) {
    const indicator = this.health.check(key);
    const stuckAfterMs = options.stuckAfterMs ?? 300_000;
    const jobs: Record<string, { state: string; ids: number }> = {};
    const stuck: string[] = [];
    try {
      for (const job of this.worker.jobs()) {
        const s = await this.worker.status(job);
        jobs[job] = { state: s.state, ids: s.ids.done };
        const seen = this.progress.get(job);
        const now = performance.now();
        if (
          !seen ||
          seen.runId !== s.runId ||
          seen.ids !== s.ids.done ||
          s.state !== 'running' ||
          // On hold (the health option) a run waits for the database on purpose: not stuck.
          s.hold
        ) {
          this.progress.set(job, {
            runId: s.runId,
            ids: s.ids.done,
            since: now,
          });
        } else if (now - seen.since >= stuckAfterMs) {
          stuck.push(
            `job "${job}" made no progress for ${Math.round((now - seen.since) / 1000)} s`,
          );
        }
      }
    } catch (e) {
      return indicator.down({
        message: `the coordination store does not answer: ${(e as Error).message}`,
      });
    }
    return stuck.length
      ? indicator.down({ message: stuck.join('; '), jobs })
      : indicator.up({ jobs });
  }
}
