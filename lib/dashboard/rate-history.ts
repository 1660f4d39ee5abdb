import type { JobStatus } from '../interfaces/run-summary.interface';

/** Ids done at a moment of the run (ms since the epoch). */
export interface RateSample {
  at: number;
  ids: number;
}

/** Samples kept per job: past this, every other one is dropped, so a long run keeps its whole span, coarser. */
const MAX_SAMPLES = 240;
/** Samples closer than this are one: many viewers polling do not add points. */
const MIN_SPACING_MS = 1000;

/**
 * The dashboard's own memory of each job's progress over its current run,
 * from the figures it reads anyway for every page and poll. The store keeps
 * counters, not a time series: keeping one there would cost every store a
 * write per poll for a picture; this costs nothing. So the curve begins when
 * this process first looked at the run (before that, one segment at the
 * run's average since its start) and a restart begins it again.
 */
export class RateHistory {
  private readonly series = new Map<
    string,
    { runId: string; samples: RateSample[] }
  >();

  /** Adds the status as a sample while its run is active; returns the run's samples so far. */
  observe(status: JobStatus, now = Date.now()): RateSample[] {
    const { job, runId } = status;
    if (!runId) return [];
    let series = this.series.get(job);
    if (!series || series.runId !== runId) {
      if (!['running', 'paused', 'stopping'].includes(status.state)) return [];
      series = { runId, samples: [] };
      // First seen mid-run: the run's start and its average since then.
      if (status.startedAt !== null && status.startedAt < now)
        series.samples.push({ at: status.startedAt, ids: 0 });
      this.series.set(job, series);
    }
    const active = ['running', 'paused', 'stopping'].includes(status.state);
    const samples = series.samples;
    const last = samples[samples.length - 1];
    if (active && (!last || now - last.at >= MIN_SPACING_MS)) {
      samples.push({ at: now, ids: status.ids.done });
      if (samples.length > MAX_SAMPLES)
        series.samples = samples.filter(
          (_, i) => i === 0 || i % 2 === 1 || i === samples.length - 1,
        );
    }
    return series.samples;
  }
}

/** Ids per second at each sample after the first, each over the few seconds before it (bursts of ranges smoothed). */
export function ratesOf(
  samples: RateSample[],
  windowMs = 5000,
): { at: number; rate: number }[] {
  const rates: { at: number; rate: number }[] = [];
  let from = 0;
  for (let i = 1; i < samples.length; i++) {
    while (from < i - 1 && samples[i].at - samples[from + 1].at >= windowMs)
      from++;
    const span = samples[i].at - samples[from].at;
    if (span > 0)
      rates.push({
        at: samples[i].at,
        rate: Math.max(0, ((samples[i].ids - samples[from].ids) / span) * 1000),
      });
  }
  return rates;
}
