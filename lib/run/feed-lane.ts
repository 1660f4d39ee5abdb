import type { ID } from '../interfaces/range.interface';
import type { RunStatus } from '../interfaces/run-summary.interface';
import type {
  CommitResult,
  StoredRange,
} from '../store/coordination-store.interface';
import { retrying } from './backoff';
import type { Dispatcher } from './dispatcher';
import { type IdOrder, idOrder } from './id-order';
import { describeLease } from './lease-format';
import type { LeaseKeeper } from './lease-keeper';
import {
  type Loaded,
  loadRanges,
  type LoaderCall,
  type LoadPartition,
  RunFailure,
} from './loader-call';
import type { RunDeps } from './run-deps';

/** Commits in flight at once while loading ahead (each one round trip to Redis). */
const MAX_PIPELINE = 16;
/** Claims and commits one lane can have in flight: the pipeline, plus the commit that marks loading exhausted. */
export const LANE_REQUESTS_IN_FLIGHT = MAX_PIPELINE + 1;
/** Consecutive loads committed together, while loading them takes no longer than BATCH_MS. */
const MAX_BATCH = 64;
const BATCH_MS = 8;

/**
 * Until a worker is ready (forking and bootstrapping the app takes a few
 * hundred ms) a host goes on calling the loader, up to about this many ids,
 * without committing: the workers then start on loads already made, and no
 * lease is taken that another host could have used.
 */
const PRELOAD_IDS = 50_000;
/** And at most this many ranges (a loader may return ranges without ids). */
const PRELOAD_RANGES = 5_000;

const countIds = (ranges: StoredRange[]): number =>
  ranges.reduce((n, r) => n + r.ids.length, 0);

/** What the feed needs from the run. */
export interface FeedHost {
  /** True while the run hands out ranges (running, not paused, not throttled). */
  handingOut(): boolean;
  /** True until the run begins to end: no claim or commit is sent after that. */
  running(): boolean;
  /** New leases are ready to send. */
  leased(): void;
  /** There is work: the first ranges were loaded or claimed (workers are started only then, so an empty run forks none). */
  needWorkers(): void;
  /** The store's cursor is before one this host committed in this run: its state went back. */
  wentBack(cursor: ID | null, committed: ID): void;
  /** The store says the run is over (`done`), cancelled, or failed; or loading failed. */
  end(
    status: RunStatus,
    error?: string,
    cause?: unknown,
    everywhere?: boolean,
  ): void;
  /** The store says nothing is left to claim or load: the run ends once nothing is in flight here. */
  exhausted(): void;
  /** The store holds another run than this one (or none): its state was lost. */
  lost(found: string | null): void;
  /** The limit suggested to the loader now. */
  limit(): number;
}

/** What the lanes of one feed share. */
export interface LaneShared {
  /** Ranges in commits in flight, all lanes together (they count against prefetch). */
  committing: number;
  /** The partitions the other lanes of this host load. */
  loading(except: FeedLane): number[];
  /** The bounds of partition `index` of this run (fixed when it started). */
  partition(index: number): Promise<LoadPartition>;
  /** The job has partitions: more lanes may load at once. */
  partitioned(): void;
  /** True while this lane may load ahead of ready workers (one lane, no partitions). */
  mayPreload(): boolean;
  /** This lane has nothing to load: true when it stops (another lane of the host goes on asking). */
  retire(lane: FeedLane): boolean;
  /** Runs the lanes' claims one after another. */
  oneClaimAtATime<T>(claim: () => Promise<T>): Promise<T>;
}

/**
 * One lane of the range feed: with the other lanes, keeps `prefetch` ranges
 * ready beyond what the workers can take. Claims only when it does not know
 * the cursor or the store says older work is due; otherwise loads from the last committed cursor, commits quick
 * consecutive loads together and pipelines up to MAX_PIPELINE commits. Each
 * commit is a compare-and-set on its own, so one refused because another host
 * moved the cursor hands out nothing; the feed then claims to learn the cursor
 * again. Every claim and commit goes through the lease keeper, which holds
 * its leases from the moment the store grants them.
 */
export class FeedLane {
  private looping = false;
  private again = false;
  private timer?: NodeJS.Timeout;
  /** The cursor to load after, while this host knows it; undefined: claim first. */
  private cursor?: { value: ID | null };
  /** Loads made while no worker is ready, not committed (no lease): consecutive, the first from its `from`. */
  private preloaded: (Loaded & { from: ID | null })[] = [];
  private preloadedIds = 0;
  private preloadedRanges = 0;
  private readonly loaderCall: LoaderCall;
  private readonly order: IdOrder;
  /** The furthest cursor a commit of this lane moved the store to, in this run (in its partition). */
  private committed?: { value: ID };
  /** The partition this lane loads (none for a job without partitions). */
  partition?: LoadPartition;

  constructor(
    private readonly d: RunDeps,
    private readonly keeper: LeaseKeeper,
    private readonly dispatcher: Dispatcher,
    private readonly host: FeedHost,
    private readonly shared: LaneShared,
    private readonly nextRequest: () => string,
  ) {
    this.order = idOrder(d.options.idOrder);
    this.loaderCall = {
      ...d,
      running: () => host.running(),
      limit: () => host.limit(),
      order: this.order,
    };
  }

  /** Looks for work now (or after `delayMs`); a call while the loop runs makes it go round once more. */
  fill(delayMs = 0): void {
    if (!this.host.running()) return;
    if (delayMs > 0) {
      if (!this.timer)
        this.timer = setTimeout(
          () => ((this.timer = undefined), this.fill()),
          delayMs,
        );
      return;
    }
    if (this.looping) return void (this.again = true);
    this.looping = true;
    this.again = false;
    void this.loop().finally(() => {
      this.looping = false;
      if (this.again) this.fill();
    });
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async loop(): Promise<void> {
    const { options, logger, job, store, hostId } = this.d;
    const commits: { result: Promise<CommitResult>; ranges: number }[] = [];
    const shared = this.shared;
    const settleOne = async () => {
      const { result, ranges } = commits.shift() as (typeof commits)[number];
      shared.committing -= ranges;
      const r = await result;
      if (r.type === 'leased') {
        const last = r.leases[r.leases.length - 1]?.range.lastId;
        if (
          last !== undefined &&
          (!this.committed ||
            this.order.compare(last, this.committed.value) > 0)
        )
          this.committed = { value: last };
        // Leases the keeper gave up meanwhile (or that the run's end gives back) are not sent.
        if (!this.host.running()) return;
        const leases = r.leases.filter((l) => this.keeper.holds(l.token));
        for (const l of leases) this.dispatcher.fresh.add(l);
        this.dispatcher.ready.push(...leases);
        if (r.due) this.cursor = undefined;
        this.host.leased();
      } else if (r.type === 'conflict') {
        if (this.behind(r.cursor)) return;
        logger.debug(
          `Job "${job.name}": another host moved the cursor to ${r.cursor}; reloading from there.`,
        );
        this.cursor = undefined;
      }
    };
    const room = () =>
      this.dispatcher.freeCapacity() +
      options.prefetch -
      this.dispatcher.ready.length -
      shared.committing;
    const settleAll = async () => {
      while (commits.length) await settleOne();
    };
    try {
      while (this.host.handingOut()) {
        if (room() <= 0) {
          if (!this.canPreload()) break;
          await settleAll();
          // Settling may have shown another host moved the cursor (or older work is due): claim first then.
          if (!this.canPreload()) continue;
          if (!(await this.preload())) return;
          continue;
        }
        if (this.cursor === undefined) {
          await settleAll();
          if (!(await this.claim())) return settleAll();
          continue;
        }
        const from = this.cursor.value;
        const max = await this.permits(room());
        if (max === 0) return settleAll();
        const loaded =
          this.takePreloaded(from, max) ?? (await this.loadBatch(from, max));
        // Nothing loaded is committed once the run began to end.
        if (!loaded || !this.host.running()) return settleAll();
        // An empty commit after the ranges marks loading exhausted at the cursor they reach.
        if (loaded.ranges.length) this.host.needWorkers();
        const batches = loaded.ranges.length ? [loaded.ranges] : [];
        if (loaded.exhausted) batches.push([]);
        const partition = this.partition?.index;
        for (const ranges of batches) {
          const expected = ranges.length ? from : loaded.cursor;
          const request = this.nextRequest();
          const result = this.keeper.acquire(
            () =>
              retrying(
                () =>
                  store.commit({
                    owner: hostId,
                    expected,
                    ranges,
                    leaseMs: options.leaseMs,
                    request,
                    partition,
                  }),
                logger,
                `commit for job "${job.name}"`,
              ),
            (r) => (r.type === 'leased' ? r.leases : []),
          );
          // Awaited in order by settleOne; this only keeps a failure from surfacing twice.
          result.catch(() => undefined);
          commits.push({ result, ranges: ranges.length });
          shared.committing += ranges.length;
        }
        this.cursor = loaded.exhausted ? undefined : { value: loaded.cursor };
        if (commits.length >= MAX_PIPELINE) await settleOne();
      }
      await settleAll();
      // Settling may have made room (a refused commit frees its ranges' place): go round again.
      if (room() > 0 && this.host.handingOut()) this.again = true;
    } catch (e) {
      // Bad loader output fails the run everywhere; a store that stays unreachable fails only this host.
      // Leases of commits still in flight are the keeper's: the run's end gives them back.
      this.host.end(
        'failed',
        (e as Error).message,
        e instanceof RunFailure ? e.cause : e,
        e instanceof RunFailure,
      );
    }
  }

  /**
   * True (and the run fails) when the store's cursor is before one this
   * host's commits moved it to: within one run the cursor only moves on, so
   * the store went back (a failover to a replica that lagged, a restore).
   */
  private behind(cursor: ID | null): boolean {
    const committed = this.committed;
    if (
      !committed ||
      (cursor !== null && this.order.compare(cursor, committed.value) >= 0)
    )
      return false;
    this.host.wentBack(cursor, committed.value);
    return true;
  }

  /** While no worker is ready, the loader may run ahead (not under `maxRangesPerSecond`, which paces the loader). */
  private canPreload(): boolean {
    const last = this.preloaded[this.preloaded.length - 1];
    return (
      this.shared.mayPreload() &&
      this.partition === undefined &&
      !this.dispatcher.anyReady() &&
      this.cursor !== undefined &&
      !last?.exhausted &&
      this.d.options.maxRangesPerSecond <= 0 &&
      this.preloadedIds < PRELOAD_IDS &&
      this.preloadedRanges < PRELOAD_RANGES
    );
  }

  /** One more batch of loads after the last one, kept uncommitted; false when the run ended meanwhile. */
  private async preload(): Promise<boolean> {
    const last = this.preloaded[this.preloaded.length - 1];
    const from = last
      ? last.cursor
      : (this.cursor as { value: ID | null }).value;
    const loaded = await this.loadBatch(from, MAX_BATCH);
    if (!loaded) return false;
    this.preloaded.push({ ...loaded, from });
    if (loaded.ranges.length) this.host.needWorkers();
    this.preloadedIds += countIds(loaded.ranges);
    this.preloadedRanges += loaded.ranges.length;
    return true;
  }

  /** Up to `max` preloaded ranges when they start at `from` (the cursor); otherwise they are stale and dropped. */
  private takePreloaded(from: ID | null, max: number): Loaded | undefined {
    const head = this.preloaded[0];
    if (!head) return undefined;
    if (JSON.stringify(head.from) !== JSON.stringify(from)) {
      this.preloaded = [];
      this.preloadedIds = this.preloadedRanges = 0;
      return undefined;
    }
    const ranges =
      head.ranges.length <= max ? head.ranges : head.ranges.splice(0, max);
    this.preloadedIds -= countIds(ranges);
    this.preloadedRanges -= ranges.length;
    if (ranges === head.ranges) {
      this.preloaded.shift();
      return head;
    }
    head.from = ranges[ranges.length - 1].lastId;
    return { ranges, cursor: head.from, exhausted: false };
  }

  /** How many ranges `maxRangesPerSecond` lets this host load now (0: the loop waits for the next second). */
  private async permits(wanted: number): Promise<number> {
    const { job, store, options, logger } = this.d;
    if (options.maxRangesPerSecond <= 0) return wanted;
    const ask = Math.min(wanted, MAX_BATCH);
    const { granted, waitMs } = await retrying(
      () =>
        store.takePermits({
          wanted: ask,
          perSecond: options.maxRangesPerSecond,
        }),
      logger,
      `permits for job "${job.name}"`,
    );
    if (granted === 0) this.fill(waitMs);
    return granted;
  }

  /** One claim; false when the loop should stop (the run ended, or nothing to do for now). */
  private async claim(): Promise<boolean> {
    const { job, store, options, hostId, logger } = this.d;
    // A host whose loop stalled renews first: its own live leases are never claimed back.
    await this.keeper.renewIfStale();
    if (!this.host.running()) return false;
    // One claim at a time per host: the store tells hosts apart, not lanes, so a lane names the partitions the
    // others load, and takes its own before the next lane asks.
    const claim = await this.shared.oneClaimAtATime(async () => {
      const request = this.nextRequest();
      const loading = this.shared.loading(this);
      const c = await this.keeper.acquire(
        () =>
          retrying(
            () =>
              store.claim({
                owner: hostId,
                leaseMs: options.leaseMs,
                request,
                loading,
              }),
            logger,
            `claim for job "${job.name}"`,
          ),
        (c) => (c.type === 'lease' ? [c.lease] : []),
      );
      if (c.type === 'load' && c.partition !== this.partition?.index) {
        // Another partition: its cursor is its own (the check for a store that went back starts over).
        this.committed = undefined;
        this.partition =
          c.partition === undefined
            ? undefined
            : await this.shared.partition(c.partition);
      }
      return c;
    });
    if (!this.host.running()) return false;
    switch (claim.type) {
      case 'lease':
        // A lease of another run: the store lost this one (and another host started a new one). The end gives it back.
        if (claim.lease.runId !== this.d.runId)
          return (this.host.lost(claim.lease.runId), false);
        if (claim.reason === 'expired')
          logger.warn(
            `Job "${job.name}": ${describeLease(claim.lease)} was re-leased after its lease expired.`,
          );
        this.dispatcher.ready.push(claim.lease);
        this.host.needWorkers();
        this.host.leased();
        return true;
      case 'load':
        if (this.partition) this.shared.partitioned();
        if (this.behind(claim.cursor)) return false;
        this.cursor = { value: claim.cursor };
        return true;
      case 'wait':
        // Nothing for this lane now: one lane of the host asks again, the others stop until a partition is free.
        if (!this.shared.retire(this)) this.fill(claim.retryInMs);
        return false;
      case 'done':
        if (!this.shared.retire(this)) this.host.exhausted();
        return false;
      case 'cancelled':
        logger.warn(`Job "${job.name}": the run was cancelled; stopping.`);
        this.host.end('stopped');
        return false;
      default:
        this.host.end('failed', claim.error);
        return false;
    }
  }

  /**
   * Loads up to `max` consecutive ranges after `from` while loading stays
   * quick (a slow loader commits range by range, so workers never wait on a
   * batch). Undefined when the run ended meanwhile.
   */
  private loadBatch(from: ID | null, max: number): Promise<Loaded | undefined> {
    const started = performance.now();
    return loadRanges(
      { ...this.loaderCall, partition: this.partition },
      from,
      Math.min(max, MAX_BATCH),
      () => performance.now() - started <= BATCH_MS && this.host.running(),
    );
  }
}
