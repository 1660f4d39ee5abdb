import type { Lease } from '../store/coordination-store.interface';
import { retrying } from './backoff';
import { type Clock, monotonicClock } from './clock';
import type { RunDeps } from './run-deps';

interface Held {
  lease: Lease;
  /** Local deadline: when the last renewal the store confirmed was sent, plus leaseMs. */
  deadline: number;
  /** When a renewal (or the call that leased it) including it was last sent. */
  triedAt: number;
  /** The tick of the keeper's timer in which that renewal was sent. */
  triedTick?: number;
}

/** Why a lease stopped being this host's, for the handler's signal and the log. */
export const LOST = 'lease lost: another host may handle this range now';
export const EXPIRED =
  'lease may be lost: the coordination store did not answer';

/**
 * Every lease this host holds, in every stage: from the moment the store
 * grants it (a commit or a claim lands, whether or not the feed has settled
 * it yet) through ready, sent, running and answered, until the store confirms
 * it ended (completed, failed or released). One timer renews them all.
 *
 * A lease's local deadline runs on a monotonic clock from when the last
 * renewal the store confirmed was sent. Once it passes, and a renewal was
 * tried since (a stalled event loop first tries one), the lease is given up:
 * `onLost` aborts its handler, whatever the store calls are doing, and it is
 * never renewed again, so a claim (this host's too) may take it over.
 */
export class LeaseKeeper {
  private readonly held = new Map<number, Held>();
  private readonly acquiring = new Set<Promise<unknown>>();
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly tickMs: number;
  private lastRenewal = -Infinity;
  private ticks = 0;
  private renewSoon = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly d: RunDeps,
    private readonly onLost: (leases: Lease[], reason: string) => void,
    /** The store issued a token this host already holds: its state went back (a failover to a lagging replica). */
    private readonly onReused: (token: number) => void = () => undefined,
  ) {
    this.clock = d.clock ?? monotonicClock;
    this.leaseMs = d.options.leaseMs;
    this.heartbeatMs = d.options.heartbeatMs;
    // Several ticks fit between a renewal being due and the lease's deadline, however close heartbeatMs is to leaseMs.
    this.tickMs = Math.max(
      5,
      Math.min(
        100,
        Math.floor(this.heartbeatMs / 2),
        Math.floor((this.leaseMs - this.heartbeatMs) / 4),
      ),
    );
    this.lastRenewal = this.clock.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  get size(): number {
    return this.held.size;
  }

  holds(token: number): boolean {
    return this.held.has(token);
  }

  /**
   * A store call that may lease ranges to this host (commit, claim): the
   * leases it returns are held from the moment it lands, with a deadline
   * counted from when it was sent. `end()` waits for every such call.
   */
  acquire<T>(
    call: () => Promise<T>,
    leasesOf: (result: T) => Lease[],
  ): Promise<T> {
    const sentAt = this.clock.now();
    const p = call().then((result) => {
      for (const lease of leasesOf(result)) {
        // A reused token never replaces a live entry: the older lease keeps it, and the run stops trusting the store.
        if (this.held.has(lease.token)) this.onReused(lease.token);
        else
          this.held.set(lease.token, {
            lease,
            deadline: sentAt + this.leaseMs,
            triedAt: sentAt,
          });
      }
      // An answer that took longer than a heartbeat (a slow store, a stalled loop) is renewed at once.
      if (this.clock.now() - sentAt > this.heartbeatMs && !this.renewSoon) {
        this.renewSoon = true;
        setImmediate(() => ((this.renewSoon = false), void this.renew()));
      }
      return result;
    });
    this.acquiring.add(p);
    void p.catch(() => undefined).finally(() => this.acquiring.delete(p));
    return p;
  }

  /** Waits until no store call that may lease ranges to this host is in flight. */
  async settled(): Promise<void> {
    while (this.acquiring.size) await Promise.allSettled([...this.acquiring]);
  }

  /** The store ended these leases (completed, failed, released): no longer this host's. */
  forget(tokens: number[]): void {
    for (const token of tokens) this.held.delete(token);
  }

  /** Gives leases back at the same attempt, retrying through a store outage; they stay held until the store took them. */
  async release(tokens: number[]): Promise<void> {
    if (tokens.length === 0) return;
    const { job, store, hostId, logger } = this.d;
    await retrying(
      () => store.release({ owner: hostId, tokens }),
      logger,
      `release for job "${job.name}"`,
    );
    this.forget(tokens);
  }

  /** Every lease still held (a forced exit gives them all back). */
  tokens(): number[] {
    return [...this.held.keys()];
  }

  /**
   * Renews now when the oldest confirmation is older than a heartbeat: a host
   * whose loop stalled does so before it claims, so its claim never takes
   * over its own live leases.
   */
  async renewIfStale(): Promise<void> {
    const now = this.clock.now();
    for (const h of this.held.values()) {
      if (h.deadline - this.leaseMs < now - this.heartbeatMs)
        return this.renew();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.ticks++;
    const now = this.clock.now();
    if (now - this.lastRenewal >= this.heartbeatMs) void this.renew();
    this.expire(now);
  }

  /**
   * Gives up leases at their deadline for which a renewal was tried in the
   * last heartbeat before it (or since): on a live loop that is every lease
   * whose renewals went unanswered; after a stall the renewal sent on waking
   * decides first.
   */
  private expire(now: number): void {
    const expired: Lease[] = [];
    for (const [token, h] of this.held) {
      // One tick early: the handler is aborted before another host can take the lease over.
      // A renewal tried in this very tick (after a stall) gets until the next one to answer.
      if (
        now < h.deadline - this.tickMs ||
        h.triedAt < h.deadline - this.heartbeatMs - this.tickMs ||
        h.triedTick === this.ticks
      )
        continue;
      this.held.delete(token);
      expired.push(h.lease);
    }
    if (expired.length) this.onLost(expired, EXPIRED);
  }

  private async renew(): Promise<void> {
    if (!this.timer) return;
    const { job, store, hostId, logger } = this.d;
    const sentAt = this.clock.now();
    this.lastRenewal = sentAt;
    // Without leases the beat still tells the store this host takes part (a run waiting out a backoff or a pause is active).
    if (this.held.size === 0)
      return void store
        .heartbeat({ owner: hostId, tokens: [], leaseMs: this.leaseMs })
        .catch(() => undefined);
    const tokens = [...this.held.keys()];
    for (const h of this.held.values()) {
      h.triedAt = sentAt;
      h.triedTick = this.ticks;
    }
    let lost: number[];
    try {
      lost = await store.heartbeat({
        owner: hostId,
        tokens,
        leaseMs: this.leaseMs,
      });
    } catch (e) {
      logger.warn(
        `Job "${job.name}": renewing ${tokens.length} leases failed (${(e as Error).message}); retrying at the next beat.`,
      );
      return;
    }
    const gone = new Set(lost);
    const lostLeases: Lease[] = [];
    for (const token of tokens) {
      const h = this.held.get(token);
      if (!h) continue;
      if (gone.has(token)) {
        this.held.delete(token);
        lostLeases.push(h.lease);
      } else {
        h.deadline = Math.max(h.deadline, sentAt + this.leaseMs);
      }
    }
    if (lostLeases.length) this.onLost(lostLeases, LOST);
  }
}
