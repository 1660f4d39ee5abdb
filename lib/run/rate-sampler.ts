/** Ids done over the last minute, from samples of the store's counter taken by status() and while running. */
export class RateSampler {
  private readonly samples = new Map<string, { runId: string | null; points: { at: number; ids: number }[] }>()

  /** Records `ids` done at store time `at` and returns ids per second over the last minute. */
  sample(job: string, runId: string | null, at: number, ids: number): number {
    let s = this.samples.get(job)
    if (!s || s.runId !== runId) this.samples.set(job, (s = { runId, points: [] }))
    const last = s.points[s.points.length - 1]
    if (!last || at - last.at >= 250) s.points.push({ at, ids })
    while (s.points.length > 2 && at - s.points[1].at >= 60_000) s.points.shift()
    const first = s.points[0]
    const span = at - first.at
    return span > 0 ? Math.max(0, ((ids - first.ids) / span) * 1000) : 0
  }
}
