import AsyncLock from 'async-lock';
import { MemoryStore } from '../../lib';
import type { WireRange, WireResult } from '../../lib/cluster/ipc.messages';
import type {
  WorkerPool,
  WorkerSlot,
} from '../../lib/cluster/worker-pool.interface';
import type { JobDefinition } from '../../lib/job.registry';
import { ModuleLogger } from '../../lib/parallel-worker.logger';
import { resolveOptions } from '../../lib/parallel-worker.options';
import { RunEngine } from '../../lib/run/run-engine';
import { replaceCalls } from '../support/replace-calls';

/** A worker slot the test answers for: what the engine sent, aborted, and whether it can still be reached. */
class Slot implements WorkerSlot {
  ready = true;
  readonly backlog = true;
  readonly pid = 4242;
  connected = true;
  readonly sent: WireRange[] = [];
  readonly refused: WireRange[] = [];
  readonly aborted: number[] = [];
  readonly answered = new Set<number>();

  constructor(
    readonly id: string,
    readonly capacity: number,
  ) {}

  send(ranges: WireRange[]): boolean {
    if (!this.connected) return (void this.refused.push(...ranges), false);
    this.sent.push(...ranges);
    return true;
  }

  abort(tokens: number[]): void {
    this.aborted.push(...tokens);
  }

  kill(): boolean {
    return true;
  }

  /** Ranges it was sent and has not answered. */
  get active(): number {
    return this.sent.filter((r) => !this.answered.has(r.token)).length;
  }
}

const ROWS = 2000;
const until = async (what: string, test: () => boolean | Promise<boolean>) => {
  const deadline = Date.now() + 5000;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const engines: RunEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});

/** One engine over ids 1..2000 in ranges of 10, on a MemoryStore, with one slot of concurrency 2. */
async function engine(
  store: MemoryStore = new MemoryStore(),
  ready = true,
  refuseFirstCommit = false,
) {
  const job: JobDefinition = {
    name: 'items',
    loader: {
      name: 'Items.next',
      call: (cursor, ctx) =>
        Array.from(
          {
            length: Math.max(
              0,
              Math.min(ctx.limit, ROWS - Number(cursor ?? 0)),
            ),
          },
          (_, i) => Number(cursor ?? 0) + i + 1,
        ),
    },
    handler: { name: 'Items.handle', call: () => undefined },
  };
  await store
    .job('items')
    .start({ runId: 'run-1' })
    .catch(() => undefined);
  const slot = new Slot('w-1', 2);
  const pool: WorkerPool = {
    started: 1,
    restarted: 0,
    start: () => undefined,
    slots: () => [slot],
    drain: async () => undefined,
    killAll: () => undefined,
  };
  // As if another host had moved the cursor just before this host's first commit.
  let refused = !refuseFirstCommit;
  const items = store.job('items');
  const own = replaceCalls(items, {
    commit: (o) =>
      refused
        ? items.commit(o)
        : ((refused = true),
          items
            .state()
            .then((s) => ({ type: 'conflict' as const, cursor: s.cursor }))),
  });
  const e = new RunEngine({
    job,
    runId: 'run-1',
    hostId: 'h-1',
    store: own,
    startedAt: performance.now(),
    lock: new AsyncLock(),
    events: { emit: () => undefined },
    options: resolveOptions({
      workers: 1,
      concurrency: 2,
      rangeSize: 10,
      retryBackoffMs: 1,
      shutdownTimeoutMs: 0,
    }),
    logger: new ModuleLogger('test', { enabled: false, level: 'info' }),
  });
  engines.push(e);
  e.start(pool);
  if (ready) e.slotReady();
  const answer = (
    ranges: WireRange[],
    result: (r: WireRange) => Partial<WireResult> = () => ({
      ok: true,
      ms: 0.01,
    }),
  ) => {
    for (const r of ranges) slot.answered.add(r.token);
    e.results(
      slot,
      ranges.map((r) => ({ token: r.token, ...result(r) }) as WireResult),
    );
  };
  return { store, slot, engine: e, answer };
}

describe('RunEngine and a worker backlog', () => {
  it('fills a worker with quick handlers beyond its concurrency, and on its death counts an attempt only for the ranges it may have started', async () => {
    const { store, slot, engine: e, answer } = await engine();
    await until('the first ranges', () => slot.sent.length === 2);
    // Quick handlers: the worker now gets a backlog.
    answer(slot.sent.slice(0, 2));
    await until('a backlog', () => slot.active > 2);
    const held = slot.active;
    const oldest = slot.sent.slice(2, 4).map((r) => r.token);

    e.slotExited(slot, null, 'SIGKILL', false);
    // The two answered before the death are recorded in their own batch (next turn of the event loop).
    await until("the dead worker's ranges back in the store", async () => {
      const s = await store.job('items').state();
      return s.retrying === held && s.counters.completed === 2;
    });
    const s = await store.job('items').state();
    expect(s.counters).toMatchObject({ completed: 2, retried: 2 });
    // The two it was running come back at attempt 2, the rest at attempt 1.
    const claims = [];
    for (let i = 0; i < held; i++) {
      const c = await store
        .job('items')
        .claim({ owner: 'h-2', leaseMs: 10_000 });
      if (c.type === 'lease')
        claims.push([c.lease.range.ids[0], c.lease.attempt]);
    }
    const attempts = new Map(
      slot.sent
        .slice(2, 2 + held)
        .map((r) => [r.ids[0], oldest.includes(r.token) ? 2 : 1]),
    );
    expect(new Map(claims as [number, number][])).toEqual(attempts);
  });

  it('gives back without an attempt a range aborted before it started, and keeps the ranges a send could not deliver', async () => {
    const { store, slot, engine: e, answer } = await engine();
    await until('the first ranges', () => slot.sent.length === 2);
    answer(slot.sent.slice(0, 1), () => ({
      ok: false,
      error: { message: 'lease lost' },
      notStarted: true,
    }));
    await until(
      'the release',
      async () => (await store.job('items').state()).retrying === 1,
    );
    expect((await store.job('items').state()).counters.retried).toBe(0);
    await until('its place refilled', () => slot.active === 2);

    // The worker cannot be reached: what was meant for it stays with this host and goes out once it can be.
    slot.connected = false;
    const sent = slot.sent.length;
    answer(slot.sent.slice(sent - 2));
    await new Promise((r) => setTimeout(r, 50));
    expect(slot.sent).toHaveLength(sent);
    expect(slot.refused.length).toBeGreaterThan(0);
    expect(slot.active).toBe(0);
    slot.connected = true;
    e.slotReady();
    await until('the held ranges', () => slot.sent.length > sent);
    // The undelivered ranges go out, with their leases; none is skipped or sent twice.
    const later = new Set(slot.sent.slice(sent).map((r) => r.token));
    expect(
      [...new Set(slot.refused.map((r) => r.token))].filter(
        (token) => !later.has(token),
      ),
    ).toEqual([]);
    const tokens = slot.sent.map((r) => r.token);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('keeps loading while two hosts start on one store, and hands every range out once when their workers are ready', async () => {
    const store = new MemoryStore();
    // Both load ahead while their workers start; the first commit of one is refused (the other moved the cursor).
    const [a, b] = [
      await engine(store, false),
      await engine(store, false, true),
    ];
    await new Promise((r) => setTimeout(r, 100));
    expect((await store.job('items').state()).state).toBe('running');
    a.engine.slotReady();
    b.engine.slotReady();
    const firsts = new Map<number, number>();
    await until('every range handed out and answered', async () => {
      for (const h of [a, b]) {
        const fresh = h.slot.sent.filter((r) => !firsts.has(r.token));
        for (const r of fresh) firsts.set(r.token, r.ids[0] as number);
        if (fresh.length) h.answer(fresh);
      }
      return (
        (await store.job('items').state()).counters.completed === ROWS / 10
      );
    });
    const ids = [...firsts.values()].sort((x, y) => x - y);
    expect(ids).toEqual(
      Array.from({ length: ROWS / 10 }, (_, i) => i * 10 + 1),
    );
    // Both hosts took part and both end with the run.
    expect(a.slot.sent.length).toBeGreaterThan(0);
    expect(b.slot.sent.length).toBeGreaterThan(0);
    expect(
      (await Promise.all([a.engine.finished, b.engine.finished])).map(
        (s) => s.status,
      ),
    ).toEqual(['completed', 'completed']);
  });
});
