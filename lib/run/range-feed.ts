import { retrying } from './backoff';
import type { Dispatcher } from './dispatcher';
import {
  FeedLane,
  type FeedHost,
  LANE_REQUESTS_IN_FLIGHT,
  type LaneShared,
} from './feed-lane';
import type { LeaseKeeper } from './lease-keeper';
import type { LoadPartition } from './loader-call';
import type { RunDeps } from './run-deps';

export type { FeedHost } from './feed-lane';

/**
 * This process's claims and commits, numbered once for all runs: a call the
 * store gets twice (a client resending after a reconnect, or `retrying` after
 * an answer that was lost) carries the same number and is answered the same.
 */
let requests = 0;
const nextRequest = (): string => String(++requests);

/**
 * Lanes of one feed at most, whatever loaderConcurrency says: the store
 * remembers the answers of a host's last REPLY_SLOTS claims and commits,
 * and every one a host can have in flight must stay among them.
 */
const MAX_LANES = 60;
/** Claims and commits one host can have in flight for a job: its lanes' commits, and one claim at a time. */
export const REQUESTS_IN_FLIGHT = MAX_LANES * LANE_REQUESTS_IN_FLIGHT + 1;

/**
 * The range feed of one run on this host: one lane (a claim, load and commit
 * loop) for a job without partitions; for a job with partitions, up to
 * `loaderConcurrency` lanes, each loading its own partition, so the loader
 * runs that many calls at once.
 */
export class RangeFeed {
  private readonly lanes: FeedLane[] = [];
  private readonly shared: LaneShared;
  private bounds?: Promise<LoadPartition[]>;
  private claiming: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly d: RunDeps,
    private readonly keeper: LeaseKeeper,
    private readonly dispatcher: Dispatcher,
    private readonly host: FeedHost,
  ) {
    this.shared = {
      committing: 0,
      loading: (except) =>
        this.lanes
          .filter((l) => l !== except && l.partition !== undefined)
          .map((l) => (l.partition as LoadPartition).index),
      partition: (index) => this.partition(index),
      partitioned: () => this.widen(),
      mayPreload: () => this.lanes.length === 1,
      oneClaimAtATime: <T>(claim: () => Promise<T>): Promise<T> => {
        const next = this.claiming.then(claim);
        this.claiming = next.catch(() => undefined);
        return next;
      },
      retire: (lane) => {
        if (this.lanes[0] === lane) return false;
        const i = this.lanes.indexOf(lane);
        if (i > 0) this.lanes.splice(i, 1);
        return true;
      },
    };
    this.lanes.push(this.lane());
  }

  /** Looks for work now (or after `delayMs`) in every lane. */
  fill(delayMs = 0): void {
    for (const lane of this.lanes) lane.fill(delayMs);
  }

  stop(): void {
    for (const lane of this.lanes) lane.stop();
  }

  private lane(): FeedLane {
    return new FeedLane(
      this.d,
      this.keeper,
      this.dispatcher,
      this.host,
      this.shared,
      nextRequest,
    );
  }

  /** The job has partitions: as many lanes as loaderConcurrency allows, no more than it has partitions, and MAX_LANES at most. */
  private widen(): void {
    void this.partitions().then((all) => {
      const want = Math.min(
        this.d.options.loaderConcurrency,
        all.length,
        MAX_LANES,
      );
      while (this.lanes.length < want) {
        const lane = this.lane();
        this.lanes.push(lane);
        lane.fill();
      }
    });
  }

  private async partition(index: number): Promise<LoadPartition> {
    const all = await this.partitions();
    const p = all[index];
    if (p) return p;
    // The partitions are fixed for the run: one the store names but does not hold means its state changed under the run.
    throw new Error(
      `the store named partition ${index + 1} of job "${this.d.job.name}" to load, but run ${this.d.runId} has ${all.length} partitions`,
    );
  }

  /** The run's partitions, read once from the store. */
  private partitions(): Promise<LoadPartition[]> {
    const { store, job, logger } = this.d;
    this.bounds ??= retrying(
      () => store.state(),
      logger,
      `state for job "${job.name}"`,
    ).then((s) =>
      (s.partitions ?? []).map((p, index, all) => ({
        index,
        count: all.length,
        after: p.after,
        upTo: p.upTo,
      })),
    );
    return this.bounds;
  }
}
