import { Logger } from '@nestjs/common';
import { Presets, SingleBar } from 'cli-progress';
import type { JobStatus, ParallelWorker } from 'nestjs-parallel-worker';

/**
 * Shows how far `job` has got while its run is in flight: a live bar on a
 * terminal (polling `status()` every 250 ms), a log line every 2 s otherwise.
 * `total` comes from the caller (a COUNT), since only the app knows its data.
 *
 * @returns a function that stops the display after one last update
 */
export function trackProgress(
  worker: ParallelWorker,
  job: string,
  total: number,
): () => Promise<void> {
  const logger = new Logger('Progress');
  const bar = process.stdout.isTTY
    ? new SingleBar(
        {
          format: `${job} {bar} {percentage}% | {value}/{total} ids | {rate} ids/s | {leased} ranges leased | ETA {remaining}`,
          stream: process.stdout,
          hideCursor: true,
          barsize: 30,
        },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(total, 0, { rate: 0, leased: 0, remaining: '-' });

  const show = (status: JobStatus): void => {
    const done = status.ids.done;
    const rate = Math.round(status.rate);
    // From the job's rate; the bar's own {eta} prints INF until a range is done.
    const eta =
      status.rate > 0
        ? `${Math.ceil(Math.max(total - done, 0) / status.rate)}s`
        : '-';
    if (bar)
      return bar.update(Math.min(done, total), {
        rate,
        leased: status.ranges.leased,
        remaining: eta,
      });
    const percent = total ? Math.floor((done / total) * 100) : 100;
    logger.log(
      `${job}: ${done} of ${total} ids (${percent}%), ${rate} ids/s, ${status.ranges.leased} ranges leased, ETA ${eta}`,
    );
  };

  // One poll at a time: a slow status() (Redis far away) must not pile up.
  let polling: Promise<void> | undefined;
  const poll = (): void => {
    polling ??= worker
      .status(job)
      .then(show)
      .catch((err: Error) =>
        logger.warn(`status('${job}') failed: ${err.message}`),
      )
      .finally(() => (polling = undefined));
  };
  const timer = setInterval(poll, bar ? 250 : 2000);

  return async () => {
    clearInterval(timer);
    await polling;
    if (!bar) return;
    poll();
    await polling;
    bar.stop();
  };
}
