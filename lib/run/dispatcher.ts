import type { WireResult } from '../cluster/ipc.messages';
import type { WorkerPool, WorkerSlot } from '../cluster/worker-pool.interface';
import type { ModuleLogger } from '../parallel-worker.logger';
import type { Lease } from '../store/coordination-store.interface';
import type { Clock } from './clock';
import { toWire } from './lease-format';

/** A range sent to a worker and not answered yet. */
export interface InFlight {
  lease: Lease;
  slot: WorkerSlot;
  /** When its handler started, as far as this host can tell; undefined while it waits in the worker's backlog. */
  startedAt?: number;
  /** Failed for running past rangeTimeoutMs; kept only to hold the worker's place until it answers or is killed. */
  timedOut: boolean;
  /** Its lease was lost or given up; its handler's signal was aborted. */
  lost: boolean;
  /** Aborted because the run is ending: a failure it answers is the stop's, not the handler's. */
  ending?: boolean;
}

/** A worker's backlog holds about this much work (by the handlers' recent time per range), so it never waits a round trip for its next range. */
const BACKLOG_MS = 10;
/**
 * Handlers up to this slow still get one range of backlog: otherwise each
 * range waits a round trip to the primary, which on busy cores (CPU-bound
 * workers on every core) is several ms. Slower handlers get none, so the
 * last ranges of a run never wait behind a long one while a worker idles.
 */
const ONE_AHEAD_MS = 1000;
/** And at most this many ranges, or ids (by the ids per range actually handed out). */
const MAX_BACKLOG = 64;
const MAX_BACKLOG_IDS = 10_000;

/**
 * Hands ready leases to worker slots and matches their answers: each slot
 * has its hand, the ranges it was sent in order (it starts them in that
 * order), and answers only for those. A slot holds `concurrency` running
 * ranges plus a backlog sized from what was measured: handler time and ids
 * per range handed out, never the limit suggested to the loader.
 */
export class Dispatcher {
  /** Leases this host holds and has not sent yet. */
  readonly ready: Lease[] = [];
  /**
   * Leases of ranges handed out for the first time (just loaded and
   * committed): the only ones a timeout may split. Any other hand-out (an
   * expired lease, a retry, a release, a dead letter retried, a half of a
   * split) may follow an attempt that still commits the whole range (a
   * zombie, or a host that knew the run fences), so it is retried whole.
   */
  readonly fresh = new WeakSet<Lease>();
  private readonly hands = new Map<WorkerSlot, InFlight[]>();
  private msPerRange?: number;
  private idsPerRange?: number;
  private lastCheck: number;
  /** Tokens removed on purpose whose late answers are expected. */
  private readonly dropped = new Set<number>();

  constructor(
    private readonly pool: () => WorkerPool,
    private readonly clock: Clock,
    private readonly logger: ModuleLogger,
    private readonly job: string,
  ) {
    this.lastCheck = clock.now();
  }

  hand(slot: WorkerSlot): InFlight[] {
    return this.hands.get(slot) ?? [];
  }

  /** Every range sent and not answered, over all slots. */
  *inFlight(): Iterable<InFlight> {
    for (const hand of this.hands.values()) yield* hand;
  }

  get inFlightCount(): number {
    let n = 0;
    for (const hand of this.hands.values()) n += hand.length;
    return n;
  }

  /** True once any slot can take ranges (until then the feed may load ahead without leasing). */
  anyReady(): boolean {
    for (const slot of this.pool().slots()) if (slot.ready) return true;
    return false;
  }

  /** How many more ranges the ready slots could take now. */
  freeCapacity(): number {
    let free = 0;
    for (const slot of this.pool().slots())
      if (slot.ready)
        free += Math.max(0, this.depth(slot) - this.hand(slot).length);
    return free;
  }

  /** A handler took `ms` for a range. */
  observe(ms: number): void {
    this.msPerRange =
      this.msPerRange === undefined ? ms : this.msPerRange * 0.9 + ms * 0.1;
  }

  /** Sends ready leases to slots with room; a worker holding a timed-out range gets nothing until it answers or is replaced. */
  dispatch(): void {
    for (const slot of this.pool().slots()) {
      if (!slot.ready || this.ready.length === 0) continue;
      const hand = this.hands.get(slot) ?? [];
      const depth = this.depth(slot);
      const free = depth - hand.length;
      // A worker is topped up once half of what it may hold is free: fewer, larger IPC messages.
      // (Inline handlers run beside each other: one that hangs does not hold the others back.)
      if (
        free < Math.ceil(depth / 2) ||
        (slot.backlog && hand.some((f) => f.timedOut))
      )
        continue;
      const batch = this.ready.splice(0, free);
      if (!slot.send(batch.map(toWire))) {
        // The worker is gone (its exit follows): these never reached it, so they stay this host's to hand out.
        this.ready.unshift(...batch);
        continue;
      }
      const now = this.clock.now();
      for (const lease of batch) {
        // The worker runs its oldest `concurrency` ranges; later ones wait in its backlog (their clock starts later).
        hand.push({
          lease,
          slot,
          startedAt: hand.length < slot.capacity ? now : undefined,
          timedOut: false,
          lost: false,
        });
        const ids = lease.range.ids.length;
        this.idsPerRange =
          this.idsPerRange === undefined
            ? ids
            : this.idsPerRange * 0.9 + ids * 0.1;
      }
      this.hands.set(slot, hand);
    }
  }

  /**
   * Takes `slot`'s answers for ranges it was sent; anything else is a
   * protocol error, logged and never counted. The places freed go to the
   * next ranges of its backlog: their clocks start now.
   */
  answered(
    slot: WorkerSlot,
    results: WireResult[],
  ): { f: InFlight; result: WireResult }[] {
    const hand = this.hand(slot);
    const matched: { f: InFlight; result: WireResult }[] = [];
    for (const result of results) {
      const i = hand.findIndex((f) => f.lease.token === result.token);
      // A late answer for a range this host stopped waiting for (given back at the end, an inline handler past its grace).
      if (i < 0 && this.dropped.delete(result.token)) continue;
      if (i < 0) {
        this.logger.warn(
          `Job "${this.job}": worker ${slot.id} (pid ${slot.pid}) answered for token ${result.token}, which it does not hold; ignored (a protocol error).`,
        );
        continue;
      }
      matched.push({ f: hand[i], result });
      hand.splice(i, 1);
    }
    const now = this.clock.now();
    for (let i = 0; i < Math.min(slot.capacity, hand.length); i++)
      hand[i].startedAt ??= now;
    return matched;
  }

  /** Stops waiting for these ranges (given back at the end, or an inline handler past its grace); a late answer is ignored. */
  remove(ranges: InFlight[]): void {
    for (const f of ranges) {
      this.dropped.add(f.lease.token);
      const hand = this.hand(f.slot);
      const i = hand.indexOf(f);
      if (i >= 0) hand.splice(i, 1);
    }
  }

  /** The slot is gone: its hand, oldest first. */
  take(slot: WorkerSlot): InFlight[] {
    const hand = this.hand(slot);
    this.hands.delete(slot);
    return hand;
  }

  /** Drops given-up leases from `ready` and marks those in a worker lost; returns the latter (to abort). */
  giveUp(tokens: Set<number>): InFlight[] {
    for (let i = this.ready.length - 1; i >= 0; i--)
      if (tokens.has(this.ready[i].token)) this.ready.splice(i, 1);
    const running = [...this.inFlight()].filter(
      (f) => tokens.has(f.lease.token) && !f.lost && !f.timedOut,
    );
    for (const f of running) f.lost = true;
    return running;
  }

  /** Aborts ranges in their workers, one message per worker (they stay in hand until answered). */
  abort(ranges: InFlight[], reason: string): void {
    const bySlot = new Map<WorkerSlot, number[]>();
    for (const f of ranges) {
      const tokens = bySlot.get(f.slot);
      if (tokens) tokens.push(f.lease.token);
      else bySlot.set(f.slot, [f.lease.token]);
    }
    for (const [slot, tokens] of bySlot) slot.abort(tokens, reason);
  }

  /**
   * Ranges whose handler ran past `timeoutMs` (newly), and those still
   * unanswered `graceMs` after that (their worker is unresponsive).
   */
  overdue(
    timeoutMs: number,
    graceMs: number,
    everyMs: number,
  ): { timedOut: InFlight[]; unresponsive: InFlight[] } {
    const now = this.clock.now();
    const timedOut: InFlight[] = [];
    const unresponsive: InFlight[] = [];
    // This check came late: the event loop stalled, and the workers' answers may be waiting to be read. Decide next time.
    const late = now - this.lastCheck > everyMs * 2 + 100;
    this.lastCheck = now;
    if (late) return { timedOut, unresponsive };
    for (const f of this.inFlight()) {
      if (f.startedAt === undefined) continue;
      const ran = now - f.startedAt;
      if (!f.timedOut && ran > timeoutMs) timedOut.push(f);
      else if (f.timedOut && ran > timeoutMs + graceMs) unresponsive.push(f);
    }
    return { timedOut, unresponsive };
  }

  /**
   * How many ranges a worker may hold: `concurrency` running plus a backlog
   * of about BACKLOG_MS of work, at least one range for handlers up to
   * ONE_AHEAD_MS (none until handlers were timed, none for slower ones, none
   * inline).
   */
  private depth(slot: WorkerSlot): number {
    if (!slot.backlog || this.msPerRange === undefined) return slot.capacity;
    const byTime = Math.max(
      this.msPerRange <= ONE_AHEAD_MS ? 1 : 0,
      Math.floor(
        (slot.capacity * BACKLOG_MS) / Math.max(this.msPerRange, 0.001),
      ),
    );
    const byIds = Math.floor(
      MAX_BACKLOG_IDS / Math.max(1, this.idsPerRange ?? 1),
    );
    return slot.capacity + Math.min(MAX_BACKLOG, byIds, byTime);
  }
}
