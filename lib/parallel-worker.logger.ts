import { Logger } from '@nestjs/common';
import type { ParallelWorkerLogLevel } from './interfaces/parallel-worker-options.interface';
import { ENV_WORKER_ID } from './parallel-worker.constants';
import { redactSecrets } from './redact-secrets';

const RANK: Record<ParallelWorkerLogLevel, number> = {
  trace: 10,
  verbose: 10,
  debug: 20,
  info: 30,
  log: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

/** Nest's `Logger` behind the seed's `logging` option (enabled, minimal level); secrets in a line are masked. */
export class ModuleLogger {
  private readonly logger: Logger;
  private readonly min: number;

  constructor(
    context: string,
    logging: { enabled: boolean; level: ParallelWorkerLogLevel },
  ) {
    // In a worker every line names it: "ParallelWorker worker w-3".
    const worker = process.env[ENV_WORKER_ID];
    this.logger = new Logger(worker ? `${context} worker ${worker}` : context);
    this.min = logging.enabled ? RANK[logging.level] : Infinity;
  }

  debug(message: string): void {
    if (this.min <= RANK.debug) this.logger.debug(redactSecrets(message));
  }

  info(message: string): void {
    if (this.min <= RANK.info) this.logger.log(redactSecrets(message));
  }

  warn(message: string): void {
    if (this.min <= RANK.warn) this.logger.warn(redactSecrets(message));
  }

  error(message: string, stack?: string): void {
    if (this.min <= RANK.error)
      this.logger.error(
        redactSecrets(message),
        stack === undefined ? undefined : redactSecrets(stack),
      );
  }
}
