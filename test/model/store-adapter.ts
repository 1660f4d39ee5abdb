import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import type {
  Claim,
  CommitResult,
  CoordinationStore,
  JobStore,
  DeadLetter,
  FailOptions,
  ID,
  PartitionBounds,
  StoreRunState,
  StoredRange,
} from '../../lib';
import { KeyValueStore, MemoryStore, RunRefusedError } from '../../lib';
import { RedisStore } from '../../lib/store/redis.store';
import { SqlStore } from '../../lib/store/sql/sql.store';
import { SqliteDialect } from '../../lib/store/sql/sqlite.dialect';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOB_KEYS } from '../../lib/store/redis/keys';
import { startOrJoin, type RunPlanDeps } from '../../lib/run/run-plan';
import type { JobDefinition } from '../../lib/job.registry';
import type { ResolvedParallelWorkerOptions } from '../../lib/interfaces/parallel-worker-options.interface';
import type { ModuleLogger } from '../../lib/parallel-worker.logger';

/**
 * Every store call the model test makes goes through this file, so a change
 * of a store signature (an app check on job calls, a plan stored against its
 * cursor, a deadline on complete) is adjusted here once.
 */

export type StoreKind = 'memory' | 'key-value' | 'redis' | 'sqlite';

export const JOB = 'items';
/** The app under test, and another app declaring the same job in the same store. */
export const OUR_APP = 'Items.next + Items.handle';
export const OTHER_APP = 'OtherItems.next + OtherItems.handle';
export const LEASE_MS = 30_000;

/** A start refused because part of the job's state was lost: only `from` or reset start it again. */
export const refusedForLostState = (e: unknown): boolean =>
  e instanceof RunRefusedError &&
  e.message.includes('coordination state of job');

/** Store time under the test's control: fixed until a step moves it. */
class Clock {
  private readonly base = Date.now();
  private offset = 0;

  now(): number {
    return this.base + this.offset;
  }

  advance(ms: number): void {
    this.offset += ms;
  }
}

class ClockedMemoryStore extends MemoryStore {
  constructor(private readonly clock: Clock) {
    super();
  }

  protected override now(): number {
    return this.clock.now();
  }
}

class ClockedKeyValueStore extends KeyValueStore {
  constructor(
    storage: Map<string, string>,
    private readonly clock: Clock,
  ) {
    super(storage, 'pw');
  }

  protected override now(): number {
    return this.clock.now();
  }
}

/** Parts of a job's state a step can lose: Redis keys, or fields of the key-value store's saved JSON. */
export const LOSABLE: Record<StoreKind, readonly string[]> = {
  memory: [],
  'key-value': [
    'state',
    'cursor',
    'leases',
    'pending',
    'dead',
    'nextToken',
    'partitions',
  ],
  redis: ['meta', 'leases', 'deadlines', 'pending', 'pdata', 'dead', 'parts'],
  // One transaction per call: no part of a job's state goes missing alone.
  sqlite: [],
};

/** One store under test, its clock and its faults; `restart()` is a new process over the same state. */
export class StoreUnderTest {
  private store: CoordinationStore;
  private readonly clock = new Clock();
  private readonly storage = new Map<string, string>();
  private readonly prefix = `pw-model-${randomBytes(4).toString('hex')}`;

  constructor(
    readonly kind: StoreKind,
    private readonly redis?: Redis,
  ) {
    this.store = this.open();
  }

  /** SQLite: the file, and every store opened on it (a restart opens another). */
  private sqlite?: { dir: string; stores: SqlStore[] };

  private open(): CoordinationStore {
    if (this.kind === 'memory') return new ClockedMemoryStore(this.clock);
    if (this.kind === 'sqlite') {
      this.sqlite ??= {
        dir: mkdtempSync(join(tmpdir(), 'pw-model-')),
        stores: [],
      };
      const store = new SqlStore(
        new SqliteDialect(join(this.sqlite.dir, 'model.db'), undefined, () =>
          this.clock.now(),
        ),
      );
      this.sqlite.stores.push(store);
      return store;
    }
    if (this.kind === 'key-value')
      return new ClockedKeyValueStore(this.storage, this.clock);
    return new RedisStore(this.redis as Redis, this.prefix);
  }

  /** How often a planned start was answered `replanFrom` and planned again (the cursor moved under its plan). */
  replans = 0;
  /** Whether the last planned start asked the job's @RangePartitions (and so validated its plan). */
  planAsked = false;

  /** A new process: a new store instance over the same state (the memory store starts empty); time moves on a second. */
  async restart(): Promise<void> {
    this.store = this.open();
    await this.advance(1000);
  }

  /**
   * Time passes. MemoryStore, KeyValueStore and SQLite read the test's clock; Redis
   * time cannot be moved, so every stored time is moved back instead (lease
   * deadlines, retry due times, hosts taking part, partition loaders); a
   * time the Redis store comes to keep elsewhere must be moved here too.
   */
  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    if (this.kind !== 'redis') return;
    const redis = this.redis as Redis;
    for (const name of ['deadlines', 'pending', 'hosts']) {
      const key = this.redisKey(name);
      const flat = await redis.zrange(key, '0', '-1', 'WITHSCORES');
      for (let i = 0; i < flat.length; i += 2)
        await redis.zadd(key, String(Number(flat[i + 1]) - ms), flat[i]);
    }
    const parts = await redis.hgetall(this.redisKey('parts'));
    for (const [field, value] of Object.entries(parts))
      if (field.endsWith(':until'))
        await redis.hset(
          this.redisKey('parts'),
          field,
          String(Number(value) - ms),
        );
  }

  /** Loses one part of the job's state; false when there was nothing there to lose. Key-value: a new process reads it. */
  async lose(part: string): Promise<boolean> {
    if (this.kind === 'redis')
      return (await (this.redis as Redis).del(this.redisKey(part))) > 0;
    if (this.kind !== 'key-value') return false;
    const key = `pw:${JOB}`;
    const saved = JSON.parse(this.storage.get(key) ?? '{}');
    if (!(part in saved)) return false;
    delete saved[part];
    this.storage.set(key, JSON.stringify(saved));
    await this.restart();
    return true;
  }

  private redisKey(name: string): string {
    if (!JOB_KEYS.includes(name as (typeof JOB_KEYS)[number]))
      throw new Error(`no Redis key ${name}`);
    return `{${this.prefix}:${JOB}}:${name}`;
  }

  async close(): Promise<void> {
    if (this.sqlite) {
      for (const store of this.sqlite.stores) await store.close();
      rmSync(this.sqlite.dir, { recursive: true, force: true });
    }
    if (this.kind !== 'redis') return;
    const redis = this.redis as Redis;
    const keys = await redis.keys(`{${this.prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }

  async startRun(
    runId: string,
    from: ID | null | undefined,
    declaredBy: string,
    partitions?: PartitionBounds[],
  ): Promise<{ runId: string; joined: boolean }> {
    const started = await this.store
      .job(JOB)
      .start({ runId, from, declaredBy, partitions });
    if ('replanFrom' in started)
      throw new Error(
        `startRun without a plan answered replanFrom ${String(started.replanFrom)}`,
      );
    return started;
  }

  /**
   * A run's start with a partition plan, by the orchestrator's own code
   * (run-plan.ts): the plan is asked of the job's @RangePartitions (and
   * validated) only when the job has none stored and no run to join, or with
   * `from`; it is passed with the cursor it was planned from, and planned
   * again from the cursor the store answers when that moved. `between` runs
   * once, inside the first @RangePartitions call (another host's or the CLI's
   * call racing a slow plan).
   */
  async startPlannedRun(
    runId: string,
    from: ID | null | undefined,
    bounds: PartitionBounds[],
    between: () => Promise<void>,
  ): Promise<{ runId: string; joined: boolean }> {
    let raced = false;
    this.planAsked = false;
    const definition = {
      name: JOB,
      partitions: {
        name: 'Items.partitions',
        call: async () => {
          this.planAsked = true;
          if (!raced) {
            raced = true;
            await between();
          }
          return bounds;
        },
      },
    } as unknown as JobDefinition;
    const job = this.store.job(JOB);
    // run-plan.ts asks the job only for the state and the start.
    const counted: CoordinationStore = {
      job: () =>
        ({
          state: (o) => job.state(o),
          start: async (o) => {
            const answer = await job.start(o);
            if ('replanFrom' in answer) this.replans++;
            return answer;
          },
        }) as Pick<JobStore, 'state' | 'start'> as JobStore,
    };
    const deps: RunPlanDeps = {
      store: counted,
      options: {
        loaderTimeoutMs: 0,
        idOrder: 'numeric',
      } as ResolvedParallelWorkerOptions,
      logger: {
        error: () => undefined,
        warn: () => undefined,
      } as unknown as ModuleLogger,
      firstCall: (_job, call) => call(),
    };
    return startOrJoin(deps, definition, {
      runId,
      from,
      declaredBy: OUR_APP,
      start: {},
      startedAt: performance.now(),
    });
  }

  claim(owner: string, request?: string): Promise<Claim> {
    return this.store.job(JOB).claim({ owner, leaseMs: LEASE_MS, request });
  }

  commit(
    owner: string,
    expected: ID | null,
    ranges: StoredRange[],
    partition?: number,
  ): Promise<CommitResult> {
    return this.store
      .job(JOB)
      .commit({ owner, expected, ranges, leaseMs: LEASE_MS, partition });
  }

  heartbeat(owner: string, tokens: number[]): Promise<number[]> {
    return this.store.job(JOB).heartbeat({ owner, tokens, leaseMs: LEASE_MS });
  }

  complete(owner: string, tokens: number[]): Promise<boolean[]> {
    return this.store.job(JOB).complete({ owner, tokens });
  }

  fail(
    owner: string,
    token: number,
    options: Omit<FailOptions, 'owner' | 'token'>,
  ): Promise<'retry' | 'dead' | 'stale'> {
    return this.store.job(JOB).fail({ owner, token, ...options });
  }

  release(owner: string, tokens: number[]): Promise<void> {
    return this.store.job(JOB).release({ owner, tokens });
  }

  endRun(
    runId: string,
    state: 'completed' | 'failed',
    error?: string,
  ): Promise<void> {
    return this.store.job(JOB).endRun({ runId, state, error });
  }

  reset(declaredBy: string): Promise<void> {
    return this.store.job(JOB).reset({ declaredBy });
  }

  control(
    action: 'pause' | 'resume' | 'cancel',
    declaredBy: string,
  ): Promise<string | null> {
    return this.store.job(JOB).control({ action, declaredBy });
  }

  retryDead(declaredBy: string): Promise<number> {
    return this.store.job(JOB).retryDead({ declaredBy });
  }

  /** The job's state as the app asks it (`status()`). */
  state(): Promise<StoreRunState> {
    return this.store.job(JOB).state({ declaredBy: OUR_APP });
  }

  /**
   * The job's state as the test sees it, without being a call of the app: the
   * key-value store is read by a new instance, so a process's first call stays
   * its first.
   */
  observe(): Promise<StoreRunState> {
    if (this.kind !== 'key-value') return this.store.job(JOB).state();
    return new ClockedKeyValueStore(this.storage, this.clock).job(JOB).state();
  }

  deadLetters(): Promise<DeadLetter[]> {
    return this.store.job(JOB).deadLetters({ declaredBy: OUR_APP });
  }
}

export const connectRedis = (): Redis =>
  new Redis(process.env.PW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
