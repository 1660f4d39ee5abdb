import type { StoreRunState } from '../store/coordination-store.interface';

/** Ids done over the last minute, from samples of the store's counter taken by status() and the CLI. */
export class RateSampler {
  private readonly samples = new Map<
    string,
    { runId: string | null; points: { at: number; ids: number }[] }
  >();

  /**
   * Records the job's ids done at store time and returns ids per second over
   * the last minute; with no earlier sample to compare with, the run's average.
   */
  rate(job: string, s: StoreRunState): number {
    const ids = s.counters.ids;
    let series = this.samples.get(job);
    if (!series || series.runId !== s.runId)
      this.samples.set(job, (series = { runId: s.runId, points: [] }));
    const last = series.points[series.points.length - 1];
    if (!last || s.now - last.at >= 250) series.points.push({ at: s.now, ids });
    while (series.points.length > 2 && s.now - series.points[1].at >= 60_000)
      series.points.shift();
    const first = series.points[0];
    const span = s.now - first.at;
    if (span > 0) return Math.max(0, ((ids - first.ids) / span) * 1000);
    const elapsed =
      s.startedAt !== null ? (s.endedAt ?? s.now) - s.startedAt : 0;
    return elapsed > 0 ? (ids / elapsed) * 1000 : 0;
  }
}
