import { Logger } from '@nestjs/common';
import type { RunSummary } from 'nestjs-parallel-worker';
import type { UsersCheck } from './users';

/**
 * Logs what the run reports and what the database says, and tells whether
 * they agree: every row visited exactly once.
 *
 * @returns `false` when rows were missed or visited twice
 */
export function reportRun(summary: RunSummary, check: UsersCheck): boolean {
  const logger = new Logger('Summary');
  const { job, ids, ranges, workers, durationMs, host } = summary;
  const seconds = durationMs / 1000;
  // With Redis, other hosts may have shared the run.
  const share =
    host.ids === ids
      ? ''
      : `; this host: ${host.ids} ids in ${host.ranges} ranges`;
  logger.log(
    `${job}: run ${summary.status}: ${ids} ids in ${ranges.completed} ranges ` +
      `(${ranges.retried} retried, ${ranges.dead} dead) in ${seconds.toFixed(2)} s, ` +
      `${Math.round(ids / Math.max(seconds, 0.001))} rows/s, ` +
      `${workers.started} workers (${workers.restarted} restarted)${share}`,
  );

  const ok = check.missed === 0 && check.duplicated === 0;
  const line =
    `${job}: ${check.once} of ${check.total} rows processed exactly once ` +
    `(${check.missed} missed, ${check.duplicated} duplicated)`;
  if (ok) logger.log(line);
  // A stopped run (Ctrl+C) leaves rows undone on purpose.
  else if (summary.status === 'stopped' && check.duplicated === 0)
    logger.warn(line);
  else logger.error(line);
  return ok;
}
