/**
 * The range size suggested to the loader (`ctx.limit`). Fixed at `rangeSize`
 * unless `targetRangeMs` is set: then it follows how long handlers take per
 * id (an exponential moving average), so a range takes about that long, as
 * pt-online-schema-change sizes its chunks, within [minRangeSize, maxRangeSize]
 * and at most doubling or halving per step.
 */
export class RangeSizer {
  private msPerId?: number;
  private size: number;
  /** On hold: ranges that end (sent before it) do not grow the size back. */
  private held = false;

  constructor(
    private readonly o: {
      rangeSize: number;
      targetRangeMs: number;
      minRangeSize: number;
      maxRangeSize: number;
    },
  ) {
    this.size =
      o.targetRangeMs > 0
        ? Math.min(o.maxRangeSize, Math.max(o.minRangeSize, o.rangeSize))
        : o.rangeSize;
  }

  get limit(): number {
    return this.size;
  }

  /**
   * A health indicator put the run on hold: the size halves (not below
   * minRangeSize), so the database gets smaller batches as it recovers; it
   * grows back, at most doubling per range that ends, as ranges end quicker
   * than targetRangeMs. A fixed size (no targetRangeMs) stays.
   */
  backOff(): void {
    if (this.o.targetRangeMs <= 0) return;
    this.held = true;
    this.size = Math.max(this.o.minRangeSize, Math.round(this.size / 2));
  }

  /** The hold ended: ranges that end from now on may grow the size back. */
  resume(): void {
    this.held = false;
  }

  /** A range of `ids` ids took `ms` in its handler. */
  observe(ids: number, ms: number): void {
    if (this.o.targetRangeMs <= 0 || ids === 0) return;
    const sample = Math.max(ms, 0.01) / ids;
    this.msPerId =
      this.msPerId === undefined ? sample : this.msPerId * 0.8 + sample * 0.2;
    if (this.held) return;
    const wanted = this.o.targetRangeMs / this.msPerId;
    const next = Math.min(this.size * 2, Math.max(this.size / 2, wanted));
    this.size = Math.round(
      Math.min(this.o.maxRangeSize, Math.max(this.o.minRangeSize, next)),
    );
  }
}
