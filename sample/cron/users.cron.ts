import { Injectable, Logger } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { ParallelWorker, RunFailedError } from 'nestjs-parallel-worker';

/**
 * Runs the `users` job on a schedule (`CRON`, default every 30 s), or when
 * `POST /run` asks. Each run continues from the stored cursor, so it handles
 * only rows added since the last one. In forked workers the module stops
 * cron jobs, so this only ever fires in the primary.
 */
@Injectable()
export class UsersCron {
  private readonly logger = new Logger(UsersCron.name);
  private running = false;

  constructor(private readonly worker: ParallelWorker) {}

  /** Whether a run started here is still going. */
  get busy(): boolean {
    return this.running;
  }

  @Cron(process.env.CRON ?? '*/30 * * * * *', { name: 'users' })
  async runUsers(): Promise<void> {
    // A run can outlast the interval; the next tick then has nothing to add.
    if (this.running)
      return this.logger.log(
        'users: previous run still in flight, skipping this tick',
      );
    this.running = true;
    try {
      const { runId, ids, durationMs } = await this.worker.run('users');
      this.logger.log(
        `users: run ${runId} handled ${ids} ids in ${(durationMs / 1000).toFixed(2)} s`,
      );
    } catch (err) {
      // Logged, not thrown: a failed run must not take the HTTP app down.
      if (!(err instanceof RunFailedError)) throw err;
      this.logger.error(err.message);
    } finally {
      this.running = false;
    }
  }
}
