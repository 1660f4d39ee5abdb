import AsyncLock from 'async-lock';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { KeyValueStore, MemoryStore, RedisStore } from '../../lib';
import type { CoordinationStore, JobStore } from '../../lib';
import { replaceCalls } from '../support/replace-calls';
import {
  newJobState,
  type MemoryJobState,
} from '../../lib/store/memory-job-state';
import { REDIS_URL } from '../support/redis-server';
import type { WireRange, WireResult } from '../../lib/cluster/ipc.messages';
import type {
  WorkerPool,
  WorkerSlot,
} from '../../lib/cluster/worker-pool.interface';
import type { JobDefinition } from '../../lib/job.registry';
import type { LoadContext } from '../../lib/interfaces/range.interface';
import type { ParallelWorkerOptions } from '../../lib/interfaces/parallel-worker-options.interface';
import { ModuleLogger } from '../../lib/parallel-worker.logger';
import { resolveOptions } from '../../lib/parallel-worker.options';
import { RunEngine } from '../../lib/run/run-engine';

/**
 * Every lease a host holds, in every stage, against a real MemoryStore and a
 * worker slot the test answers for. Time is a dependency: a manual monotonic
 * clock drives the engine and the store; `Date.now()` (the wall clock) is
 * moved on its own to show it decides nothing.
 */

/** Monotonic time the test moves; `reads` counts how often the engine looked (each look is a tick of its timers). */
class ManualClock {
  t = 1_000_000;
  reads = 0;
  /** Real monotonic time instead (for a real stall of the event loop). */
  real = false;
  now(): number {
    this.reads++;
    return this.real ? performance.now() : this.t;
  }
}

/** A MemoryStore whose time is the test's clock, and whose renewals the test can count or hang. */
class ClockedStore extends MemoryStore {
  renewals = 0;
  hang = false;
  constructor(private readonly clock: ManualClock) {
    super();
  }

  protected override now(): number {
    return this.clock.real ? performance.now() : this.clock.t;
  }

  /** Calls a test replaces, each given the handle's own. */
  private replaced?: (job: JobStore) => Partial<JobStore>;

  replace(calls: (job: JobStore) => Partial<JobStore>): void {
    this.replaced = calls;
  }

  override job(name: string): JobStore {
    const job = this.clocked(super.job(name));
    return this.replaced ? replaceCalls(job, this.replaced(job)) : job;
  }

  private clocked(job: JobStore): JobStore {
    return replaceCalls(job, {
      heartbeat: (o) => {
        this.renewals++;
        return this.hang
          ? new Promise(() => undefined)
          : this.queued(() => job.heartbeat(o));
      },
      claim: (o) => this.queued(() => job.claim(o)),
      commit: (o) => this.queued(() => job.commit(o)),
      complete: (o) => this.queued(() => job.complete(o)),
      fail: (o) => this.queued(() => job.fail(o)),
      release: (o) => this.queued(() => job.release(o)),
    });
  }

  /** While frozen (a Redis stopped with SIGSTOP), every call waits, then runs in the order it came. */
  private gate?: Promise<void>;
  private open?: () => void;

  freeze(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  thaw(): void {
    this.open?.();
    this.gate = undefined;
  }

  private async queued<T>(call: () => Promise<T>): Promise<T> {
    if (this.gate) await this.gate;
    return call();
  }
}

class Slot implements WorkerSlot {
  active = 0;
  ready = true;
  readonly sent: WireRange[] = [];
  readonly answered = new Set<number>();
  readonly aborted: { token: number; reason: string }[] = [];

  /** Inline (workers: 0): the primary itself, no backlog. */
  constructor(
    readonly id: string,
    readonly capacity: number,
    readonly backlog = true,
    readonly pid = backlog ? 4242 : process.pid,
  ) {}

  send(ranges: WireRange[]): boolean {
    this.sent.push(...ranges);
    return true;
  }

  abort(tokens: number[], reason: string): void {
    for (const token of tokens) this.aborted.push({ token, reason });
  }

  kill(): boolean {
    return true;
  }

  unanswered(): WireRange[] {
    return this.sent.filter((r) => !this.answered.has(r.token));
  }
}

const until = async (
  what: string,
  test: () => boolean | Promise<boolean>,
  ms = 5000,
  fail = true,
) => {
  const deadline = performance.now() + ms;
  while (!(await test())) {
    if (performance.now() > deadline) {
      if (fail) throw new Error(`timed out waiting for ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
};

let clock: ManualClock;
let wallOffset = 0;
const realNow = Date.now.bind(Date);
const engines: RunEngine[] = [];
beforeEach(() => {
  clock = new ManualClock();
  wallOffset = 0;
  jest.spyOn(Date, 'now').mockImplementation(() => realNow() + wallOffset);
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
  jest.restoreAllMocks();
});

/** Time passes: the monotonic clock and the wall clock move together. */
const advance = (ms: number) => {
  clock.t += ms;
  wallOffset += ms;
};
/** A few turns of the engine's timers (each reads the clock). */
const ticks = (n: number) => {
  const from = clock.reads;
  return until(`${n} ticks`, () => clock.reads >= from + n, 500, false);
};

interface Setup {
  rows?: number;
  slots?: number;
  capacity?: number;
  options?: ParallelWorkerOptions;
  store?: ClockedStore;
  loader?: (cursor: number, ctx: LoadContext) => unknown;
  ready?: boolean;
  realTime?: boolean;
  inline?: boolean;
  /** Another store (the Redis store); `store` is then only the test's clock holder. */
  coordination?: CoordinationStore;
}

async function harness(setup: Setup = {}) {
  const rows = setup.rows ?? 200;
  clock.real = setup.realTime === true;
  const store = setup.store ?? new ClockedStore(clock);
  const coordination = setup.coordination ?? store;
  const job: JobDefinition = {
    name: 'items',
    loader: {
      name: 'Items.next',
      call: (cursor, ctx) =>
        setup.loader
          ? setup.loader(Number(cursor ?? 0), ctx)
          : Array.from(
              {
                length: Math.max(
                  0,
                  Math.min(ctx.limit, rows - Number(cursor ?? 0)),
                ),
              },
              (_, i) => Number(cursor ?? 0) + i + 1,
            ),
    },
    handler: { name: 'Items.handle', call: () => undefined },
  };
  await coordination
    .job('items')
    .start({ runId: 'run-1' })
    .catch(() => undefined);
  const slots = Array.from(
    { length: setup.slots ?? 1 },
    (_, i) => new Slot(`w-${i + 1}`, setup.capacity ?? 1, !setup.inline),
  );
  const pool: WorkerPool = {
    started: slots.length,
    restarted: 0,
    start: () => undefined,
    slots: () => slots,
    drain: async () => undefined,
    killAll: () => undefined,
  };
  const engine = new RunEngine({
    job,
    runId: 'run-1',
    hostId: 'h-1',
    store: coordination.job('items'),
    startedAt: clock.t,
    lock: new AsyncLock(),
    events: { emit: () => undefined },
    clock,
    options: resolveOptions({
      workers: setup.inline ? 0 : slots.length,
      concurrency: setup.capacity ?? 1,
      rangeSize: 10,
      retryBackoffMs: 1,
      shutdownTimeoutMs: 0,
      loaderTimeoutMs: 0,
      ...setup.options,
    }),
    logger: new ModuleLogger('test', { enabled: false, level: 'info' }),
  });
  engines.push(engine);
  engine.start(pool);
  if (setup.ready !== false) for (const slot of slots) engine.slotReady(slot);
  const answer = (
    slot: Slot,
    ranges: WireRange[],
    result: (r: WireRange) => Partial<WireResult> = () => ({
      ok: true,
      ms: 0.01,
    }),
  ) => {
    for (const r of ranges) slot.answered.add(r.token);
    engine.results(
      slot,
      ranges.map((r) => ({ token: r.token, ...result(r) }) as WireResult),
    );
  };
  /** Answers every range as it arrives until the run ends. */
  const answerAll = async () => {
    let ended = false;
    void engine.finished.then(() => (ended = true));
    await until(
      'the end of the run',
      () => {
        // Time moves on while the run goes (retries become due).
        advance(1);
        for (const slot of slots)
          if (slot.unanswered().length) answer(slot, slot.unanswered());
        return ended;
      },
      10_000,
    );
    return engine.finished;
  };
  return { store, slots, slot: slots[0], engine, answer, answerAll };
}

describe('RunEngine leases', () => {
  it('1. gives a worker work again once its timed-out handler obeyed the signal and returned', async () => {
    const { store, slot, answer, answerAll } = await harness({
      rows: 50,
      options: { rangeTimeoutMs: 1000 },
    });
    await until('the first range', () => slot.sent.length === 1);
    const first = slot.sent[0];
    advance(1500);
    await until('its signal aborted', () =>
      slot.aborted.some((a) => a.token === first.token),
    );
    // The handler obeys its signal and returns: the worker is alive and free.
    answer(slot, [first], () => ({
      ok: false,
      error: { message: 'This operation was aborted' },
    }));
    const summary = await answerAll();
    expect(summary.status).toBe('completed');
    // Retried whole: this slot never answers whether the range's fence was called (the engine asks before a split).
    expect((await store.job('items').state()).counters).toMatchObject({
      completed: 5,
      ids: 50,
      retried: 1,
    });
  });

  it('2. renews the leases of commits the feed has not settled yet, while the loader is slower than leaseMs', async () => {
    let gate!: () => void;
    const hung = new Promise<void>((r) => (gate = r));
    let calls = 0;
    const { store } = await harness({
      options: { leaseMs: 100, heartbeatMs: 30, prefetch: 50 },
      loader: async (cursor) => {
        // Each of the first three calls is slower than the feed's batching window, so each is committed alone.
        if (++calls <= 3) await new Promise((r) => setTimeout(r, 15));
        else await hung;
        return [cursor + 1, cursor + 2];
      },
    });
    await until(
      'three commits',
      async () => (await store.job('items').state()).leased === 3,
    );
    // leaseMs and more pass while the fourth loader call hangs; the host renews every heartbeatMs.
    for (let i = 0; i < 5; i++) {
      const before = store.renewals;
      advance(30);
      await until('a renewal', () => store.renewals > before, 500, false);
    }
    const other = await store
      .job('items')
      .claim({ owner: 'h-2', leaseMs: 100 });
    expect(other.type).toBe('load');
    gate();
  });

  it('3. after an event-loop stall longer than leaseMs, renews before it claims and never re-leases its own ranges', async () => {
    let calls = 0;
    const { store, slot, answerAll } = await harness({
      rows: 300,
      capacity: 2,
      realTime: true,
      options: { leaseMs: 150, heartbeatMs: 30, prefetch: 0 },
      loader: (cursor, ctx) => {
        // A synchronous loader that blocks the primary for longer than leaseMs, once.
        if (++calls === 6) {
          const until = performance.now() + 400;
          while (performance.now() < until) {
            /* a stall */
          }
        }
        return Array.from(
          { length: Math.max(0, Math.min(ctx.limit, 300 - cursor)) },
          (_, i) => cursor + i + 1,
        );
      },
    });
    expect((await answerAll()).status).toBe('completed');
    expect(slot.sent.filter((r) => r.attempt > 1)).toEqual([]);
    expect((await store.job('items').state()).counters).toMatchObject({
      completed: 30,
      ids: 300,
      retried: 0,
    });
  });

  it('4. aborts its handlers once leaseMs passes without a confirmed renewal, while the renewals hang', async () => {
    const { store, slot } = await harness({
      options: { leaseMs: 100, heartbeatMs: 30 },
    });
    await until('the first range', () => slot.sent.length === 1);
    store.hang = true;
    advance(130);
    await until('its signal aborted', () =>
      slot.aborted.some((a) => a.token === slot.sent[0].token),
    );
    expect(slot.aborted[0].reason).toMatch(/lease/);
  });

  it('5. on stop, waits for the worker to say whether it started a range from its backlog', async () => {
    const { store, slot, engine, answer } = await harness({
      options: { shutdownTimeoutMs: 60_000 },
    });
    await until('the first range', () => slot.sent.length === 1);
    // Quick handlers give the worker a backlog.
    answer(slot, slot.sent);
    await until('a backlog', () => slot.unanswered().length >= 3);
    const [running, started, waiting] = slot.unanswered();
    const stopped = engine.stop();
    await until('the backlog aborted', () =>
      slot.aborted.some((a) => a.token === waiting.token),
    );
    // The worker had started the second one (its message saying so was in transit); the third it had not.
    answer(slot, [running, started]);
    answer(slot, [waiting], () => ({
      ok: false,
      error: { message: 'run stopped' },
      notStarted: true,
    }));
    const rest = slot.unanswered();
    answer(slot, rest, () => ({
      ok: false,
      error: { message: 'run stopped' },
      notStarted: true,
    }));
    expect((await stopped).status).toBe('stopped');
    const s = await store.job('items').state();
    expect(s.counters).toMatchObject({ completed: 1 + 2, retried: 0 });
    expect(s.leased).toBe(0);
    // Only the ranges it never started (and those never sent) come back, at the same attempt.
    const back: [number, number][] = [];
    for (
      let c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 });
      c.type === 'lease';
      c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 })
    )
      back.push([c.lease.range.ids[0] as number, c.lease.attempt]);
    expect(back.filter(([, attempt]) => attempt !== 1)).toEqual([]);
    const firsts = back.map(([first]) => first);
    for (const r of [waiting, ...rest]) expect(firsts).toContain(r.ids[0]);
    expect(firsts).not.toContain(started.ids[0]);
    expect(firsts).not.toContain(running.ids[0]);
  });

  it('5b. on stop, gives a range the worker never answered for back at attempt + 1 after shutdownTimeoutMs', async () => {
    const { store, slot, engine } = await harness({
      options: { shutdownTimeoutMs: 0 },
    });
    await until('the first range', () => slot.sent.length === 1);
    expect((await engine.stop()).status).toBe('stopped');
    const back = new Map<unknown, number>();
    for (
      let c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 });
      c.type === 'lease';
      c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 })
    )
      back.set(c.lease.range.ids[0], c.lease.attempt);
    expect(back.get(slot.sent[0].ids[0])).toBe(2);
  });

  it("6. takes a worker's answers only for the ranges it was sent", async () => {
    const {
      store,
      slots: [a, b],
      engine,
    } = await harness({ slots: 2 });
    await until(
      'a range each',
      () => a.sent.length === 1 && b.sent.length === 1,
    );
    // B answers for A's range; then A reports its range's real failure.
    engine.results(b, [{ token: a.sent[0].token, ok: true, ms: 1 }]);
    engine.results(a, [
      {
        token: a.sent[0].token,
        ok: false,
        error: { message: 'constraint violated' },
      },
    ]);
    await until('the failure recorded', async () => {
      const c = (await store.job('items').state()).counters;
      return c.completed + c.retried > 0;
    });
    await new Promise((r) => setImmediate(r));
    expect((await store.job('items').state()).counters).toMatchObject({
      completed: 0,
      retried: 1,
    });
  });

  it('7. a wall-clock step forward neither times out ranges nor expires leases', async () => {
    const { store, slot, answerAll } = await harness({
      rows: 50,
      options: { leaseMs: 100, heartbeatMs: 30, rangeTimeoutMs: 40 },
    });
    await until('the first range', () => slot.sent.length === 1);
    wallOffset += 3_600_000;
    await ticks(20);
    expect(slot.aborted).toEqual([]);
    expect((await answerAll()).status).toBe('completed');
    expect((await store.job('items').state()).counters).toMatchObject({
      completed: 5,
      retried: 0,
    });
  });

  it('8. a commit that lands after stop() is released before the run resolves', async () => {
    let commits = 0;
    let landed!: () => void;
    const gate = new Promise<void>((r) => (landed = r));
    let second: Promise<unknown> | undefined;
    const store = new ClockedStore(clock);
    store.replace((job) => ({
      commit: (o) => {
        if (++commits !== 2) return job.commit(o);
        const p = gate.then(() => job.commit(o));
        second = p;
        return p;
      },
      release: async (o) => {
        await new Promise((r) => setTimeout(r, 20));
        return job.release(o);
      },
    }));
    const { slot, engine, answer } = await harness({
      store,
      options: { prefetch: 3 },
    });
    await until('the first range', () => slot.sent.length >= 1);
    answer(slot, slot.sent.slice(0, 1));
    await until('the second commit in flight', () => commits >= 2);
    const stopped = engine.stop();
    setTimeout(landed, 60);
    await stopped;
    await second;
    await new Promise((r) => setImmediate(r));
    expect((await store.job('items').state()).leased).toBe(0);
  });

  it('keeps its leases when heartbeatMs is close to leaseMs', async () => {
    const { store, slot } = await harness({
      options: { leaseMs: 1000, heartbeatMs: 900 },
    });
    await until('the first range', () => slot.sent.length === 1);
    // Two seconds pass in steps of 50 ms, each seen by the engine's timers; the store answers every renewal at once.
    for (let i = 0; i < 40; i++) {
      advance(50);
      await ticks(2);
    }
    expect(slot.aborted).toEqual([]);
    expect((await store.job('items').state()).leased).toBeGreaterThan(0);
    expect(
      await store.job('items').claim({ owner: 'h-2', leaseMs: 100 }),
    ).toMatchObject({
      type: 'load',
    });
  });

  it('lets a lease expire when its result could not be written, so the range goes out again and the run ends', async () => {
    const store = new ClockedStore(clock);
    let broken = true;
    store.replace((job) => ({
      complete: async (o) => {
        if (broken) {
          broken = false;
          // The store stayed unreachable past the 30 s of retries.
          jest
            .spyOn(performance, 'now')
            .mockReturnValue(performance.now() + 3_600_000);
          throw new Error('connection refused');
        }
        return job.complete(o);
      },
    }));
    const { slot, answer, answerAll } = await harness({
      store,
      rows: 30,
      options: { leaseMs: 1000, heartbeatMs: 300 },
    });
    await until('the first range', () => slot.sent.length === 1);
    answer(slot, slot.sent);
    await until('the failed write', () => !broken);
    jest.mocked(performance.now).mockRestore();
    // Time goes on: the unrecorded lease is not renewed any more, expires, and is claimed again.
    const ended = answerAll();
    for (
      let i = 0;
      i < 100 && (await store.job('items').state()).state === 'running';
      i++
    ) {
      advance(100);
      await ticks(2);
    }
    expect((await ended).status).toBe('completed');
    expect((await store.job('items').state()).counters).toMatchObject({
      completed: 3,
      ids: 30,
      retried: 1,
    });
  });

  it('goes on handing out inline while one inline handler hangs past rangeTimeoutMs', async () => {
    const { slot, answer } = await harness({
      inline: true,
      capacity: 4,
      options: { rangeTimeoutMs: 1000 },
    });
    await until('four ranges', () => slot.sent.length === 4);
    const [hung] = slot.sent;
    advance(1500);
    await until('its signal aborted', () =>
      slot.aborted.some((a) => a.token === hung.token),
    );
    answer(
      slot,
      slot.unanswered().filter((r) => r.token !== hung.token),
    );
    await until('more ranges while it hangs', () => slot.sent.length > 4);
  });

  it('on stop, a backlog range that had started and throws on its aborted signal goes out again, never dead', async () => {
    const { store, slot, engine, answer } = await harness({
      options: { shutdownTimeoutMs: 60_000, maxAttempts: 1 },
    });
    await until('the first range', () => slot.sent.length === 1);
    answer(slot, slot.sent);
    await until('a backlog', () => slot.unanswered().length >= 2);
    const [running, started, ...rest] = slot.unanswered();
    const stopped = engine.stop();
    await until('the backlog aborted', () =>
      slot.aborted.some((a) => a.token === started.token),
    );
    answer(slot, [running]);
    answer(slot, [started], () => ({
      ok: false,
      error: { message: 'This operation was aborted' },
    }));
    answer(slot, rest, () => ({
      ok: false,
      error: { message: 'run stopped' },
      notStarted: true,
    }));
    await stopped;
    expect((await store.job('items').state()).dead).toBe(0);
    const back = new Map<unknown, number>();
    for (
      let c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 });
      c.type === 'lease';
      c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 })
    )
      back.set(c.lease.range.ids[0], c.lease.attempt);
    expect(back.get(started.ids[0])).toBe(2);
  });

  it("sizes a worker's backlog from the ranges handed out, not from ctx.limit", async () => {
    // A loader that ignores ctx.limit (which climbs to 10,000 with quick handlers) and returns 10 ids.
    const { slot, answer } = await harness({
      rows: 100_000,
      options: { rangeSize: undefined, prefetch: 64 },
      loader: (cursor) => Array.from({ length: 10 }, (_, i) => cursor + i + 1),
    });
    let most = 0;
    await until(
      'a deep backlog',
      () => {
        most = Math.max(most, slot.unanswered().length);
        if (slot.unanswered().length)
          answer(slot, slot.unanswered().slice(0, 1));
        return most > 8 || slot.answered.size > 400;
      },
      10_000,
    );
    expect(most).toBeGreaterThan(8);
  });

  it('fails the run, never completes it, when the store issues a token this host still holds', async () => {
    // A store whose token counter went back (a failover to a replica that lagged): its second commit reuses the first's tokens.
    const store = new ClockedStore(clock);
    let firstTokens: number[] = [];
    store.replace((job) => ({
      commit: async (o) => {
        const result = await job.commit(o);
        if (result.type !== 'leased') return result;
        if (firstTokens.length === 0)
          firstTokens = result.leases.map((l) => l.token);
        else
          result.leases = result.leases.map((l, i) => ({
            ...l,
            token: firstTokens[i % firstTokens.length],
          }));
        return result;
      },
    }));
    // Each load is slower than the feed's batching window, so each is committed alone.
    const { slot, engine } = await harness({
      store,
      options: { prefetch: 4 },
      loader: async (cursor) => (
        await new Promise((r) => setTimeout(r, 15)),
        [cursor + 1, cursor + 2]
      ),
    });
    const summary = await engine.finished;
    expect(summary.status).toBe('failed');
    expect(summary.error).toMatch(
      /the store issued fencing token \d+ again while this host still holds it/,
    );
    // Each token went to a worker once.
    const tokens = slot.sent.map((r) => r.token);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  /** The state a memory store's job handle holds (the key-value store's, once loaded). */
  const stateOf = (job: JobStore) =>
    (job as unknown as { s: MemoryJobState }).s;
  /** Everything the job's state held is gone, as if the store had never seen the job. */
  const lose = (job: JobStore) => {
    const s = stateOf(job);
    for (const key of Object.keys(s)) delete s[key as keyof MemoryJobState];
    Object.assign(s, newJobState());
  };

  describe("when the store loses the run's state", () => {
    const redis = new Redis(REDIS_URL);
    // disconnect, not quit: ioredis's QUIT can race the server's close of the socket and reject "Connection is closed".
    afterAll(() => redis.disconnect());

    type Case = [
      string,
      () => CoordinationStore | undefined,
      (store: ClockedStore, coordination?: CoordinationStore) => unknown,
    ];
    const cases: Case[] = [
      ['MemoryStore', () => undefined, (store) => lose(store.job('items'))],
      [
        'KeyValueStore (its state and the saved copy gone)',
        () => new KeyValueStore(new Map(), 'pw'),
        async (_, coordination) => {
          const kv = coordination as KeyValueStore;
          const loaded = (
            kv.job('items') as unknown as { loaded: Promise<JobStore> }
          ).loaded;
          lose(await loaded);
          (kv as unknown as { storage: Map<string, string> }).storage.clear();
        },
      ],
      [
        "Redis store (the job's keys deleted, as by FLUSHALL or an eviction)",
        () =>
          new RedisStore(redis, `pw-lost-${randomBytes(4).toString('hex')}`),
        async (_, coordination) => {
          const prefix = (coordination as unknown as { prefix: string }).prefix;
          const keys = await redis.keys(`{${prefix}:items}:*`);
          if (keys.length) await redis.del(...keys);
        },
      ],
    ];
    it.each(cases)(
      '%s: the run fails saying so, and is never reported completed',
      async (_name, make, wipe) => {
        const coordination = make();
        const { store, slot, answer, engine } = await harness({
          rows: 1000,
          coordination,
        });
        await until('the first ranges', () => slot.sent.length >= 1);
        answer(slot, slot.unanswered());
        await until('more ranges', () => slot.sent.length >= 2);
        await wipe(store, coordination);
        let ended = false;
        void engine.finished.then(() => (ended = true));
        await until('the end of the run', () => {
          advance(1);
          if (slot.unanswered().length) answer(slot, slot.unanswered());
          return ended;
        });
        const summary = await engine.finished;
        expect(summary.status).toBe('failed');
        expect(summary.error).toMatch(
          /the coordination state of run run-1 of job "items" was lost from the store \(it holds no run\)/,
        );
      },
    );
  });

  describe("when the store's cursor goes back within the run (a failover to a replica that lagged, a restore)", () => {
    const redis = new Redis(REDIS_URL);
    // disconnect, not quit: ioredis's QUIT can race the server's close of the socket and reject "Connection is closed".
    afterAll(() => redis.disconnect());

    type Case = [
      string,
      () => CoordinationStore | undefined,
      (store: ClockedStore, coordination?: CoordinationStore) => unknown,
    ];
    const cases: Case[] = [
      [
        'MemoryStore',
        () => undefined,
        (store) => void (stateOf(store.job('items')).cursor = 2),
      ],
      [
        'Redis store',
        () =>
          new RedisStore(redis, `pw-back-${randomBytes(4).toString('hex')}`),
        async (_, coordination) => {
          await redis.hset(
            `{${(coordination as unknown as { prefix: string }).prefix}:items}:meta`,
            'cursor',
            '2',
          );
        },
      ],
    ];
    it.each(cases)(
      '%s: the run fails saying so, and is never reported completed',
      async (_name, make, goBack) => {
        const coordination = make();
        // Each load is slower than the feed's batching window, so the feed commits (and learns the cursor) range by range.
        const { store, slot, answer, engine } = await harness({
          rows: 1000,
          coordination,
          options: { prefetch: 2 },
          loader: async (cursor) => (
            await new Promise((r) => setTimeout(r, 5)),
            cursor >= 1000 ? [] : [cursor + 1, cursor + 2]
          ),
        });
        await until(
          'several ranges',
          () => (
            slot.unanswered().length && answer(slot, slot.unanswered()),
            slot.sent.length >= 6
          ),
        );
        await goBack(store, coordination);
        let ended = false;
        void engine.finished.then(() => (ended = true));
        await until('the end of the run', () => {
          advance(1);
          if (slot.unanswered().length) answer(slot, slot.unanswered());
          return ended;
        });
        const summary = await engine.finished;
        expect(summary.status).toBe('failed');
        expect(summary.error).toMatch(
          /^the store's cursor of run run-1 of job "items" went back to 2, behind \d+ that this host committed/,
        );
      },
    );
  });
});

describe('RunEngine: done means done', () => {
  /** The ranges of `first` handed out so far, by attempt. */
  const attemptsOf = (slot: Slot, first: WireRange) =>
    slot.sent.filter((r) => r.ids[0] === first.ids[0]).map((r) => r.attempt);

  /**
   * The first range is sent, then the store freezes (every call waits and
   * lands in order once it thaws, renewals too) until the keeper gives its
   * leases up and aborts the handler; the worker answers `answer`, then the
   * store thaws. `dropRenewals`: renewals sent meanwhile are lost, not
   * delayed (the store's deadline passes for good).
   */
  async function givenUp(
    stepMs: number,
    steps: number,
    result: (r: WireRange) => Partial<WireResult>,
    dropRenewals = false,
  ) {
    const setup = await harness({
      rows: 30,
      options: { leaseMs: 100, heartbeatMs: 30, maxAttempts: 1, prefetch: 0 },
    });
    const { store, slot, answer } = setup;
    await until('the first range', () => slot.sent.length === 1);
    const first = slot.sent[0];
    store.freeze();
    store.hang = dropRenewals;
    for (let i = 0; i < steps; i++) {
      const before = store.renewals;
      advance(stepMs);
      await until('a renewal', () => store.renewals > before, 500, false);
    }
    await until('its signal aborted', () =>
      slot.aborted.some((a) => a.token === first.token),
    );
    answer(slot, [first], result);
    // The answer reaches the store behind what was sent before it.
    await new Promise((r) => setImmediate(r));
    store.hang = false;
    store.thaw();
    return { ...setup, first };
  }

  it('hands a range out again at attempt + 1, never dead, when its handler returns after seeing its lease given up', async () => {
    // The handler obeys its signal: it stops where it is and returns.
    const { store, slot, answerAll, first } = await givenUp(130, 1, () => ({
      ok: true,
      ms: 1,
      aborted: true,
    }));
    expect((await answerAll()).status).toBe('completed');
    expect(attemptsOf(slot, first)).toEqual([1, 2]);
    expect(await store.job('items').state()).toMatchObject({
      dead: 0,
      counters: { ids: 30, completed: 3, dead: 0 },
    });
  });

  it('hands a range out again at attempt + 1 when its handler throws after seeing its lease given up, never dead', async () => {
    const { store, slot, answerAll, first } = await givenUp(130, 1, () => ({
      ok: false,
      error: { message: 'This operation was aborted' },
    }));
    expect((await answerAll()).status).toBe('completed');
    expect(attemptsOf(slot, first)).toEqual([1, 2]);
    expect(await store.job('items').state()).toMatchObject({
      dead: 0,
      counters: { ids: 30, completed: 3, dead: 0 },
    });
  });

  it('counts a range whose handler finished before the abort reached it, while the store still held the lease', async () => {
    // Given up one tick before the store's deadline (90 of 100 ms): the store still holds it for this host.
    const { store, slot, answerAll, first } = await givenUp(30, 3, () => ({
      ok: true,
      ms: 1,
    }));
    expect((await answerAll()).status).toBe('completed');
    expect(attemptsOf(slot, first)).toEqual([1]);
    expect((await store.job('items').state()).counters).toMatchObject({
      ids: 30,
      completed: 3,
    });
  });

  it('does not count a range whose answer reaches the store past the lease deadline; it goes out again at attempt + 1', async () => {
    // Finished before the abort reached the worker, but answered after the store's deadline: not this host's to count.
    const { store, slot, answerAll, first } = await givenUp(
      130,
      1,
      () => ({ ok: true, ms: 1 }),
      true,
    );
    expect((await answerAll()).status).toBe('completed');
    expect(attemptsOf(slot, first)).toEqual([1, 2]);
    expect((await store.job('items').state()).counters).toMatchObject({
      ids: 30,
      completed: 3,
    });
  });

  it('on stop, a backlog range that had started and returns on its aborted signal goes out again at attempt + 1', async () => {
    const { store, slot, engine, answer } = await harness({
      options: { shutdownTimeoutMs: 60_000, maxAttempts: 1 },
    });
    await until('the first range', () => slot.sent.length === 1);
    answer(slot, slot.sent);
    await until('a backlog', () => slot.unanswered().length >= 2);
    const [running, started, ...rest] = slot.unanswered();
    const stopped = engine.stop();
    await until('the backlog aborted', () =>
      slot.aborted.some((a) => a.token === started.token),
    );
    answer(slot, [running]);
    answer(slot, [started], () => ({ ok: true, ms: 1, aborted: true }));
    answer(slot, rest, () => ({
      ok: false,
      error: { message: 'run stopped' },
      notStarted: true,
    }));
    await stopped;
    const s = await store.job('items').state();
    expect(s.dead).toBe(0);
    expect(s.counters.completed).toBe(2);
    const back = new Map<unknown, number>();
    for (
      let c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 });
      c.type === 'lease';
      c = await store.job('items').claim({ owner: 'h-2', leaseMs: 100 })
    )
      back.set(c.lease.range.ids[0], c.lease.attempt);
    expect(back.get(started.ids[0])).toBe(2);
    expect(back.has(running.ids[0])).toBe(false);
  });
});
