import type { CoordinationStore, StoredRange } from '../../lib';
import { RunRefusedError } from '../../lib';
import { REQUESTS_IN_FLIGHT } from '../../lib/run/range-feed';

const range = (ids: number[], prev: number | null): StoredRange => ({
  ids,
  lastId: ids[ids.length - 1],
  prev,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The semantics every `CoordinationStore` must have; run against MemoryStore,
 * the seed-style key-value store and the Redis store.
 */
export function storeContract(
  name: string,
  make: () => Promise<{
    store: CoordinationStore;
    job: string;
    close?: () => Promise<void>;
    /** A new store instance over the same state, as a fresh process makes it; absent when the state dies with the store. */
    reopen?: () => CoordinationStore;
  }>,
  /** The store keeps its state outside the instance: `make` gives `reopen`, and the fresh-process cases run. */
  { reopens = false }: { reopens?: boolean } = {},
): void {
  describe(`${name}: CoordinationStore contract`, () => {
    let store: CoordinationStore;
    let job: string;
    let close: (() => Promise<void>) | undefined;
    let reopen: (() => CoordinationStore) | undefined;
    const A = 'host-a';
    const B = 'host-b';
    const LEASE = 10_000;

    beforeEach(async () => {
      ({ store, job, close, reopen } = await make());
    });
    afterEach(async () => close?.());

    const leaseFresh = async (owner: string, ids: number[]) => {
      const claim = await store.claim(job, owner, LEASE);
      if (claim.type !== 'load')
        throw new Error(`expected load, got ${claim.type}`);
      const result = await store.commit(
        job,
        owner,
        claim.cursor,
        [range(ids, claim.cursor as number | null)],
        LEASE,
      );
      if (result.type !== 'leased')
        throw new Error(`expected leased, got ${result.type}`);
      return result.leases[0];
    };

    it('starts a run, then joins it instead of starting a second one', async () => {
      expect(await store.startRun(job, 'run-1')).toEqual({
        runId: 'run-1',
        joined: false,
      });
      expect(await store.startRun(job, 'run-2')).toEqual({
        runId: 'run-1',
        joined: true,
      });
      expect((await store.state(job)).state).toBe('running');
    });

    it('hands out the cursor for a load, commits with increasing tokens and moves the cursor', async () => {
      await store.startRun(job, 'r');
      expect(await store.claim(job, A, LEASE)).toEqual({
        type: 'load',
        cursor: null,
      });
      const first = await leaseFresh(A, [1, 2, 3]);
      expect(first).toMatchObject({
        runId: 'r',
        attempt: 1,
        owner: A,
        range: { ids: [1, 2, 3], lastId: 3, prev: null },
      });
      const second = await leaseFresh(B, [4, 5]);
      expect(second.token).toBeGreaterThan(first.token);
      expect(second.range.prev).toBe(3);
      const s = await store.state(job);
      expect(s).toMatchObject({ cursor: 5, leased: 2, retrying: 0 });
    });

    it('commits, renews and completes thousands of leases in one call each', async () => {
      await store.startRun(job, 'r');
      const ranges = Array.from({ length: 5000 }, (_, i) =>
        range([i * 2 + 1, i * 2 + 2], i === 0 ? null : i * 2),
      );
      const r = await store.commit(job, A, null, ranges, LEASE);
      if (r.type !== 'leased') throw new Error('expected leased');
      const tokens = r.leases.map((l) => l.token);
      expect(new Set(tokens).size).toBe(5000);
      expect(await store.heartbeat(job, A, tokens, LEASE)).toEqual([]);
      expect(await store.heartbeat(job, B, tokens.slice(0, 3), LEASE)).toEqual(
        tokens.slice(0, 3),
      );
      // A token twice in one call counts once.
      expect(await store.complete(job, A, [...tokens, tokens[0]])).toEqual([
        ...tokens.map(() => true),
        false,
      ]);
      expect(await store.state(job)).toMatchObject({
        cursor: 10_000,
        leased: 0,
        counters: { ids: 10_000, completed: 5000 },
      });
    });

    it('commits consecutive ranges in one step, with increasing tokens', async () => {
      await store.startRun(job, 'r');
      const r = await store.commit(
        job,
        A,
        null,
        [range([1, 2], null), range([3], 2), range([5, 8], 3)],
        LEASE,
      );
      if (r.type !== 'leased') throw new Error('expected leased');
      expect(r.leases.map((l) => l.range.ids)).toEqual([[1, 2], [3], [5, 8]]);
      expect(r.leases[1].token).toBe(r.leases[0].token + 1);
      expect(r.leases[2].token).toBe(r.leases[0].token + 2);
      expect(
        r.leases.every(
          (l) => l.attempt === 1 && l.owner === A && l.runId === 'r',
        ),
      ).toBe(true);
      expect(await store.state(job)).toMatchObject({ cursor: 8, leased: 3 });
      expect(await store.commit(job, B, 3, [range([5, 8], 3)], LEASE)).toEqual({
        type: 'conflict',
        cursor: 8,
      });
    });

    it('refuses a commit from a stale cursor (another host moved it first)', async () => {
      await store.startRun(job, 'r');
      const a = await store.claim(job, A, LEASE);
      const b = await store.claim(job, B, LEASE);
      expect(a).toEqual({ type: 'load', cursor: null });
      expect(b).toEqual({ type: 'load', cursor: null });
      expect(
        (await store.commit(job, A, null, [range([1, 2], null)], LEASE)).type,
      ).toBe('leased');
      expect(
        await store.commit(job, B, null, [range([1, 2], null)], LEASE),
      ).toEqual({ type: 'conflict', cursor: 2 });
      expect(await store.claim(job, B, LEASE)).toEqual({
        type: 'load',
        cursor: 2,
      });
      expect((await store.state(job)).leased).toBe(1);
    });

    it('keeps ids as numbers or strings, as the loader returned them', async () => {
      await store.startRun(job, 'r');
      const r = await store.commit(
        job,
        A,
        null,
        [
          {
            ids: ['9007199254740993', '9007199254740995'],
            lastId: '9007199254740995',
            prev: null,
            payload: { shard: 'x' },
          },
        ],
        LEASE,
      );
      expect(r.type === 'leased' && r.leases[0].range).toEqual({
        ids: ['9007199254740993', '9007199254740995'],
        lastId: '9007199254740995',
        prev: null,
        payload: { shard: 'x' },
      });
      expect(await store.claim(job, A, LEASE)).toEqual({
        type: 'load',
        cursor: '9007199254740995',
      });
    });

    it('completes several ranges in one call, counting each only once', async () => {
      await store.startRun(job, 'r');
      const a = await leaseFresh(A, [1, 2]);
      const b = await leaseFresh(A, [3]);
      expect(
        await store.complete(job, A, [a.token, 999, b.token, a.token]),
      ).toEqual([true, false, true, false]);
      expect((await store.state(job)).counters).toMatchObject({
        ids: 3,
        completed: 2,
      });
    });

    it('says on commit whether older work is due, so the host claims before loading again', async () => {
      await store.startRun(job, 'r');
      const a = await leaseFresh(A, [1]);
      await store.fail(job, A, a.token, {
        error: { message: 'x' },
        dead: false,
        retryInMs: 0,
      });
      const r = await store.commit(job, A, 1, [range([2], 1)], LEASE);
      expect(r).toMatchObject({ type: 'leased', due: true });
      await store.claim(job, A, LEASE);
      expect(
        await store.commit(job, A, 2, [range([3], 2)], LEASE),
      ).toMatchObject({ type: 'leased', due: false });
    });

    it('completes by token and owner, counting ids once; a stale completion is not counted', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [1, 2, 3]);
      expect(await store.complete(job, B, [lease.token])).toEqual([false]);
      expect(await store.complete(job, A, [lease.token])).toEqual([true]);
      expect(await store.complete(job, A, [lease.token])).toEqual([false]);
      expect((await store.state(job)).counters).toMatchObject({
        ids: 3,
        completed: 1,
      });
    });

    it('re-leases an expired lease first, with attempt + 1 and a new token; the old holder loses it', async () => {
      await store.startRun(job, 'r');
      const claim = await store.claim(job, A, 50);
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.commit(job, A, null, [range([1, 2], null)], 50);
      if (res.type !== 'leased') throw new Error('expected leased');
      await sleep(120);
      const taken = await store.claim(job, B, LEASE);
      expect(taken).toMatchObject({
        type: 'lease',
        reason: 'expired',
        lease: { attempt: 2, owner: B, range: { ids: [1, 2] } },
      });
      if (taken.type !== 'lease') throw new Error('expected lease');
      expect(taken.lease.token).toBeGreaterThan(res.leases[0].token);
      expect(
        await store.heartbeat(job, A, [res.leases[0].token], LEASE),
      ).toEqual([res.leases[0].token]);
      expect(await store.complete(job, A, [res.leases[0].token])).toEqual([
        false,
      ]);
      expect(await store.complete(job, B, [taken.lease.token])).toEqual([true]);
      expect((await store.state(job)).counters).toMatchObject({
        ids: 2,
        completed: 1,
        retried: 1,
      });
    });

    it('refuses to complete a lease past its deadline, even one its owner still holds; it goes out again at attempt + 1', async () => {
      await store.startRun(job, 'r');
      const claim = await store.claim(job, A, 50);
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.commit(job, A, null, [range([1, 2], null)], 50);
      if (res.type !== 'leased') throw new Error('expected leased');
      await sleep(120);
      // No one took it over yet: the owner still holds it, but its deadline passed.
      expect(await store.complete(job, A, [res.leases[0].token])).toEqual([
        false,
      ]);
      expect((await store.state(job)).counters).toMatchObject({
        ids: 0,
        completed: 0,
      });
      expect(await store.claim(job, B, LEASE)).toMatchObject({
        type: 'lease',
        reason: 'expired',
        lease: { attempt: 2, owner: B, range: { ids: [1, 2] } },
      });
    });

    it('keeps a heartbeated lease alive past its first deadline', async () => {
      await store.startRun(job, 'r');
      const claim = await store.claim(job, A, 80);
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.commit(job, A, null, [range([1], null)], 80);
      if (res.type !== 'leased') throw new Error('expected leased');
      for (let i = 0; i < 4; i++) {
        await sleep(40);
        expect(
          await store.heartbeat(job, A, [res.leases[0].token], 80),
        ).toEqual([]);
      }
      expect(await store.claim(job, B, LEASE)).toEqual({
        type: 'load',
        cursor: 1,
      });
    });

    it('schedules a failed range for retry (attempt + 1, after its delay) or sends it to the dead letters', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [1, 2]);
      expect(
        await store.fail(job, A, lease.token, {
          error: { message: 'boom' },
          dead: false,
          retryInMs: 100,
        }),
      ).toBe('retry');
      expect(
        await store.fail(job, A, lease.token, {
          error: { message: 'boom' },
          dead: false,
          retryInMs: 100,
        }),
      ).toBe('stale');
      expect(await store.claim(job, A, LEASE)).toEqual({
        type: 'load',
        cursor: 2,
      });
      await sleep(130);
      const retry = await store.claim(job, A, LEASE);
      expect(retry).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 2, range: { ids: [1, 2] } },
      });
      if (retry.type !== 'lease') throw new Error('expected lease');
      expect(
        await store.fail(job, A, retry.lease.token, {
          error: { message: 'again', stack: 'Error: again\n  at x' },
          dead: true,
          retryInMs: 0,
        }),
      ).toBe('dead');
      const dead = await store.deadLetters(job);
      expect(dead).toEqual([
        expect.objectContaining({
          runId: 'r',
          attempts: 2,
          range: expect.objectContaining({ ids: [1, 2] }),
          error: { message: 'again', stack: 'Error: again\n  at x' },
        }),
      ]);
      expect(await store.state(job)).toMatchObject({
        dead: 1,
        counters: { retried: 1, dead: 1 },
      });
    });

    it('keeps params, startedBy and host with the run; a joining host gets its params back', async () => {
      const params = '{"big":12345678901234567890,"since":"2026-01-01"}';
      expect(
        await store.startRun(job, 'p1', undefined, undefined, undefined, {
          params,
          startedBy: 'ops@example.com',
          host: 'host-a',
        }),
      ).toEqual({ runId: 'p1', joined: false });
      expect(
        await store.startRun(job, 'p2', undefined, undefined, undefined, {
          params: '{"other":1}',
          host: 'host-b',
        }),
      ).toEqual({ runId: 'p1', joined: true, params });
      expect(await store.state(job)).toMatchObject({
        runId: 'p1',
        params,
        startedBy: 'ops@example.com',
        startedOn: 'host-a',
      });
      await store.endRun(job, 'p1', 'completed');
      // A run without params has none (not the last run's).
      await store.startRun(job, 'p3', undefined, undefined, undefined, {
        host: 'host-b',
      });
      const s = await store.state(job);
      expect(s.params).toBeUndefined();
      expect(s.startedBy).toBeUndefined();
      expect(s.startedOn).toBe('host-b');
      expect(await store.startRun(job, 'p4')).toEqual({
        runId: 'p3',
        joined: true,
      });
    });

    it('retries only the ids that failed of a range; the others count as done, as a range that ended done', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [1, 2, 3, 4, 5]);
      expect(
        await store.fail(job, A, lease.token, {
          error: { message: 'two rows failed' },
          ids: [2, 4],
          dead: false,
          retryInMs: 0,
        }),
      ).toBe('retry');
      expect(await store.state(job)).toMatchObject({
        counters: { ids: 3, completed: 1, retried: 1 },
        retrying: 1,
      });
      const retry = await store.claim(job, A, LEASE);
      expect(retry).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 2, range: { ids: [2, 4], prev: null, lastId: 5 } },
      });
      if (retry.type !== 'lease') throw new Error('expected lease');
      expect(
        await store.fail(job, A, retry.lease.token, {
          error: { message: 'still failing' },
          ids: [4],
          dead: true,
          retryInMs: 0,
        }),
      ).toBe('dead');
      expect(await store.state(job)).toMatchObject({
        counters: { ids: 4, completed: 2, retried: 1, dead: 1 },
        dead: 1,
      });
      expect(await store.deadLetters(job)).toEqual([
        expect.objectContaining({
          attempts: 2,
          range: expect.objectContaining({ ids: [4] }),
          error: { message: 'still failing' },
        }),
      ]);
    });

    it('counts nothing of a partial failure past its lease deadline: the lease stays, expires and the whole range goes out again at attempt + 1', async () => {
      await store.startRun(job, 'r');
      const claim = await store.claim(job, A, 50);
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.commit(
        job,
        A,
        null,
        [range([1, 2, 3], null)],
        50,
      );
      if (res.type !== 'leased') throw new Error('expected leased');
      await sleep(120);
      // No one took it over yet: the owner still holds it, but its deadline passed.
      expect(
        await store.fail(job, A, res.leases[0].token, {
          error: { message: 'one row failed' },
          ids: [2],
          dead: false,
          retryInMs: 0,
        }),
      ).toBe('stale');
      expect((await store.state(job)).counters).toMatchObject({
        ids: 0,
        completed: 0,
        retried: 0,
        dead: 0,
      });
      expect(await store.claim(job, B, LEASE)).toMatchObject({
        type: 'lease',
        reason: 'expired',
        lease: { attempt: 2, owner: B, range: { ids: [1, 2, 3] } },
      });
    });

    it('lists dead letters a page at a time, oldest first', async () => {
      await store.startRun(job, 'r');
      for (let i = 1; i <= 5; i++) {
        const lease = await leaseFresh(A, [i]);
        await store.fail(job, A, lease.token, {
          error: { message: `e${i}` },
          dead: true,
          retryInMs: 0,
        });
      }
      const page = await store.deadLetters(job, { offset: 1, limit: 2 });
      expect(page.map((d) => d.range.ids)).toEqual([[2], [3]]);
      expect(
        (await store.deadLetters(job, { offset: 4, limit: 10 })).map(
          (d) => d.error.message,
        ),
      ).toEqual(['e5']);
      expect(await store.deadLetters(job, { offset: 5, limit: 10 })).toEqual(
        [],
      );
      expect(await store.deadLetters(job)).toHaveLength(5);
    });

    it('keeps the newest records of ended runs; a record of the same run replaces it, but stopped never replaces an end', async () => {
      const { recordRun, history } = store;
      if (!recordRun || !history)
        throw new Error(`${name} keeps no history: recordRun/history missing`);
      const record = (
        runId: string,
        status: 'completed' | 'stopped' | 'cancelled' | 'failed',
        extra: Partial<Parameters<typeof recordRun>[1]> = {},
      ): Parameters<typeof recordRun>[1] => ({
        runId,
        job,
        params: { n: 12345678901234, tag: runId },
        status,
        startedBy: 'cron',
        host: A,
        startedAt: 1000,
        endedAt: 2000,
        summary: {
          job,
          runId,
          status: status === 'cancelled' ? 'stopped' : status,
          ids: 10,
          ranges: { completed: 1, retried: 0, dead: 0 },
          workers: { started: 2, restarted: 0 },
          durationMs: 1000,
          host: { ids: 10, ranges: 1 },
        },
        deadLetters: 0,
        ...extra,
      });
      const add = (r: Parameters<typeof recordRun>[1], keep = 3) =>
        recordRun.call(store, job, r, keep);
      const list = async (limit = 10) =>
        (await history.call(store, job, limit)).map(
          (r) => `${r.runId}:${r.status}`,
        );
      expect(await list()).toEqual([]);
      await add(record('a', 'completed'));
      await add(record('b', 'failed', { error: 'boom' }));
      await add(record('c', 'stopped'));
      expect(await list()).toEqual(['c:stopped', 'b:failed', 'a:completed']);
      // c resumed and completed by another host: its record is replaced and comes first.
      await add(record('c', 'completed', { host: B }));
      // A host that stopped while c ended elsewhere does not turn it back into stopped.
      await add(record('c', 'stopped'));
      await add(record('b', 'stopped'));
      // A host whose own part failed (it lost the store) does not turn a completed run into failed.
      await add(record('c', 'failed', { error: 'lost the store' }));
      expect(await list()).toEqual(['c:completed', 'b:failed', 'a:completed']);
      await add(record('d', 'cancelled'));
      expect(await list()).toEqual(['d:cancelled', 'c:completed', 'b:failed']);
      expect(await list(2)).toEqual(['d:cancelled', 'c:completed']);
      const [d, c, b] = await history.call(store, job, 10);
      expect(d).toEqual(record('d', 'cancelled'));
      expect(c.host).toBe(B);
      expect(b.error).toBe('boom');
      // Kept across reset.
      await store.reset(job);
      expect(await list()).toHaveLength(3);
    });

    it('hands dead letters out again, once, with retryDead()', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [7, 8]);
      await store.fail(job, A, lease.token, {
        error: { message: 'poison' },
        dead: true,
        retryInMs: 0,
      });
      expect((await store.state(job)).dead).toBe(1);
      expect(await store.retryDead(job)).toBe(1);
      expect(await store.retryDead(job)).toBe(0);
      expect(await store.deadLetters(job)).toEqual([]);
      expect(await store.claim(job, B, LEASE)).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 1, range: { ids: [7, 8] } },
      });
    });

    it('shares maxRangesPerSecond permits per second between hosts', async () => {
      await store.startRun(job, 'r');
      const first = await store.takePermits(job, 4, 6);
      const second = await store.takePermits(job, 4, 6);
      if (second.granted === 2) {
        expect(first).toEqual({ granted: 4, waitMs: 0 });
        const third = await store.takePermits(job, 4, 6);
        // Either the same second is used up, or a new second began meanwhile.
        if (third.granted === 0) expect(third.waitMs).toBeGreaterThan(0);
        expect(third.waitMs).toBeLessThanOrEqual(1000);
      } else {
        // The second rolled over between the two calls.
        expect(second.granted).toBe(4);
      }
    });

    it('pauses (claims wait), resumes, and cancels a run for every host', async () => {
      await store.startRun(job, 'r');
      expect(await store.control(job, 'pause')).toBe('r');
      expect((await store.state(job)).control).toBe('pause');
      expect(await store.claim(job, A, LEASE)).toMatchObject({ type: 'wait' });
      await store.control(job, 'resume');
      expect(await store.claim(job, A, LEASE)).toEqual({
        type: 'load',
        cursor: null,
      });
      const lease = await leaseFresh(A, [1]);
      expect(await store.control(job, 'cancel')).toBe('r');
      expect((await store.state(job)).state).toBe('stopped');
      expect(await store.claim(job, B, LEASE)).toEqual({ type: 'cancelled' });
      expect(await store.control(job, 'pause')).toBeNull();
      await store.release(job, A, [lease.token]);
      expect(await store.startRun(job, 'r2')).toEqual({
        runId: 'r2',
        joined: false,
      });
      expect(await store.claim(job, B, LEASE)).toMatchObject({
        type: 'lease',
        reason: 'released',
        lease: { range: { ids: [1] } },
      });
    });

    it('says how the run before the active one ended: its id, its end and its error', async () => {
      await store.startRun(job, 'r1');
      expect((await store.state(job)).previous).toBeUndefined();
      await store.control(job, 'cancel');
      await store.startRun(job, 'r2');
      expect((await store.state(job)).previous).toEqual({
        runId: 'r1',
        state: 'stopped',
      });
      await store.endRun(job, 'r2', 'failed', 'the loader broke');
      await store.startRun(job, 'r3');
      expect(await store.state(job)).toMatchObject({
        runId: 'r3',
        previous: { runId: 'r2', state: 'failed', error: 'the loader broke' },
      });
      await store.endRun(job, 'r3', 'completed');
      await store.startRun(job, 'r4', null);
      expect((await store.state(job)).previous).toEqual({
        runId: 'r3',
        state: 'completed',
      });
    });

    it('resets the cursor, refused while a live lease exists', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [1, 2]);
      await expect(store.reset(job)).rejects.toThrow(
        /^run r is active \(a host holds a lease of it, or took part in it within leaseMs and has not stopped\); cancel it or wait for it before resetting the job$/,
      );
      await expect(store.reset(job)).rejects.toBeInstanceOf(RunRefusedError);
      await expect(store.reset(job)).rejects.toMatchObject({ job });
      await store.complete(job, A, [lease.token]);
      await store.leave?.(job, A);
      await store.reset(job);
      expect(await store.state(job)).toMatchObject({
        cursor: null,
        leased: 0,
        retrying: 0,
      });
    });

    it('counts a run waiting out a retry backoff as active: reset and from are refused until its hosts left or went quiet', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [1, 2]);
      expect(
        await store.fail(job, A, lease.token, {
          error: { message: 'x' },
          dead: false,
          retryInMs: 60_000,
        }),
      ).toBe('retry');
      // No live lease now; host A waits for the retry (its claims say wait) and beats.
      expect(await store.claim(job, A, LEASE)).toMatchObject({ type: 'load' });
      expect(await store.heartbeat(job, A, [], LEASE)).toEqual([]);
      // Views of the job say it is running, though no lease is held now.
      expect(await store.state(job)).toMatchObject({ leased: 0, active: true });
      await expect(store.reset(job)).rejects.toThrow(/^run r is active/);
      await expect(store.startRun(job, 'r2', null)).rejects.toThrow(
        /^run r is active/,
      );
      await store.leave!(job, A);
      expect(await store.state(job)).toMatchObject({
        state: 'running',
        active: false,
      });
      await store.reset(job);
      expect(await store.state(job)).toMatchObject({
        state: 'idle',
        cursor: null,
        retrying: 0,
        counters: { ids: 0, completed: 0, retried: 0 },
        startedAt: null,
      });
      // A host that went quiet (no leave: it crashed) stops counting once its lease time passed.
      await store.startRun(job, 'r3');
      expect(await store.claim(job, B, 50)).toMatchObject({ type: 'load' });
      await expect(store.reset(job)).rejects.toThrow(/^run r3 is active/);
      await sleep(80);
      await store.reset(job);
    });

    it('answers a claim or a commit that arrives twice (a client resending it) the same, leasing nothing more', async () => {
      await store.startRun(job, 'r');
      expect(await store.claim(job, A, LEASE, '7')).toEqual({
        type: 'load',
        cursor: null,
      });
      const first = await store.commit(
        job,
        A,
        null,
        [range([1, 2], null), range([3], 2)],
        LEASE,
        '8',
      );
      const again = await store.commit(
        job,
        A,
        null,
        [range([1, 2], null), range([3], 2)],
        LEASE,
        '8',
      );
      expect(first.type).toBe('leased');
      expect(again).toEqual(first);
      expect((await store.state(job)).leased).toBe(2);
      // Another request with the same content is a new commit: refused, the cursor moved.
      expect(
        await store.commit(job, A, null, [range([1, 2], null)], LEASE, '9'),
      ).toEqual({ type: 'conflict', cursor: 3 });
      const leases = (first as { leases: { token: number }[] }).leases;
      expect(
        await store.fail(job, A, leases[0].token, {
          error: { message: 'x' },
          dead: false,
          retryInMs: 0,
        }),
      ).toBe('retry');
      const claim = await store.claim(job, A, LEASE, '10');
      expect(claim).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 2, owner: A, range: { ids: [1, 2] } },
      });
      expect(await store.claim(job, A, LEASE, '10')).toEqual(claim);
      expect((await store.state(job)).leased).toBe(2);
      // Once the lease is not the owner's any more, the same request claims afresh.
      await store.release(job, A, [
        (claim as { lease: { token: number } }).lease.token,
      ]);
      expect(await store.claim(job, A, LEASE, '10')).toMatchObject({
        type: 'lease',
        reason: 'released',
        lease: { attempt: 2 },
      });
      // Requests are per owner: B's request 8 is not A's.
      expect(
        await store.commit(job, B, 3, [range([4], 3)], LEASE, '8'),
      ).toMatchObject({ type: 'leased', leases: [{ range: { ids: [4] } }] });
    });

    it('answers the oldest of as many claims and commits as a host can have in flight the same when it arrives again', async () => {
      await store.startRun(job, 'r');
      expect(await store.claim(job, A, LEASE, '1')).toEqual({
        type: 'load',
        cursor: null,
      });
      const first = await store.commit(
        job,
        A,
        null,
        [range([1], null)],
        LEASE,
        '2',
      );
      for (let i = 2; i < REQUESTS_IN_FLIGHT; i++)
        expect(
          (
            await store.commit(
              job,
              A,
              i - 1,
              [range([i], i - 1)],
              LEASE,
              String(i + 1),
            )
          ).type,
        ).toBe('leased');
      expect(
        await store.commit(job, A, null, [range([1], null)], LEASE, '2'),
      ).toEqual(first);
      expect((await store.state(job)).leased).toBe(REQUESTS_IN_FLIGHT - 1);
    });

    it('keeps the total of the current run', async () => {
      await store.startRun(job, 'r');
      await store.setTotal(job, 'r', 1234);
      await store.setTotal(job, 'other', 5);
      expect((await store.state(job)).total).toBe(1234);
      await store.endRun(job, 'r', 'completed');
      await store.startRun(job, 'r2');
      expect((await store.state(job)).total).toBeUndefined();
    });

    it('releases leases to be handed out again at the same attempt', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [1, 2]);
      await store.release(job, A, [lease.token]);
      expect(await store.complete(job, A, [lease.token])).toEqual([false]);
      expect(await store.claim(job, B, LEASE)).toMatchObject({
        type: 'lease',
        reason: 'released',
        lease: { attempt: 1, owner: B, range: { ids: [1, 2] } },
      });
    });

    it('ends the run only when the loader is exhausted and nothing is leased or waiting', async () => {
      await store.startRun(job, 'r');
      const lease = await leaseFresh(A, [1]);
      expect(await store.commit(job, A, 1, [], LEASE)).toEqual({
        type: 'exhausted',
      });
      expect(await store.claim(job, B, LEASE)).toMatchObject({ type: 'wait' });
      await store.complete(job, A, [lease.token]);
      expect(await store.claim(job, B, LEASE)).toEqual({ type: 'done' });
      await store.endRun(job, 'r', 'completed');
      expect((await store.state(job)).state).toBe('completed');
    });

    it('keeps the cursor for the next run, and starts over with from: null', async () => {
      await store.startRun(job, 'r1');
      const lease = await leaseFresh(A, [1, 2]);
      await store.complete(job, A, [lease.token]);
      await store.commit(job, A, 2, [], LEASE);
      await store.endRun(job, 'r1', 'completed');
      expect(await store.startRun(job, 'r2')).toEqual({
        runId: 'r2',
        joined: false,
      });
      expect(await store.claim(job, A, LEASE)).toEqual({
        type: 'load',
        cursor: 2,
      });
      expect((await store.state(job)).counters.ids).toBe(0);
      await store.endRun(job, 'r2', 'completed');
      await store.startRun(job, 'r3', null);
      expect(await store.claim(job, A, LEASE)).toEqual({
        type: 'load',
        cursor: null,
      });
    });

    it('refuses to move the cursor while a live lease of the active run exists', async () => {
      await store.startRun(job, 'r');
      await leaseFresh(A, [1]);
      // A plain Error with the store's words, not a raw script error.
      await expect(store.startRun(job, 'r2', null)).rejects.toThrow(
        /^run r is active \(a host holds a lease of it, or took part in it within leaseMs and has not stopped\); wait for it or stop it before moving the cursor$/,
      );
    });

    it('never lets another app (another loader and handler) continue or join a job, unless it takes it over with from', async () => {
      const appA = 'UsersBackfill.next + UsersBackfill.handle';
      const appB = 'Reindex.next + Reindex.handle';
      await store.startRun(job, 'r1', undefined, appA);
      await leaseFresh(A, [1, 2]);
      const refused = new RegExp(
        `^Job "${job}" in this store belongs to another app, which declares it as UsersBackfill.next \\+ UsersBackfill.handle; this app declares it as Reindex.next \\+ Reindex.handle\\. Two apps sharing one Redis need different storageKey values`,
      );
      // Joining the active run, or starting the next one from A's cursor: both refused, naming both declarations.
      await expect(store.startRun(job, 'r2', undefined, appB)).rejects.toThrow(
        refused,
      );
      await store.endRun(job, 'r1', 'completed');
      await expect(store.startRun(job, 'r2', undefined, appB)).rejects.toThrow(
        refused,
      );
      expect((await store.state(job)).runId).toBe('r1');
      // The same app joins and continues with no configuration; a store user that names no declaration is not checked.
      expect(await store.startRun(job, 'r3', undefined, appA)).toEqual({
        runId: 'r3',
        joined: false,
      });
      await store.endRun(job, 'r3', 'completed');
      expect(await store.startRun(job, 'r4')).toEqual({
        runId: 'r4',
        joined: false,
      });
      await store.endRun(job, 'r4', 'completed');
      // `from` takes the job over (a renamed class), and from then on it is B's.
      expect(await store.startRun(job, 'r5', null, appB)).toEqual({
        runId: 'r5',
        joined: false,
      });
      await store.endRun(job, 'r5', 'completed');
      await expect(store.startRun(job, 'r6', undefined, appA)).rejects.toThrow(
        /belongs to another app, which declares it as Reindex.next/,
      );
    });

    it('issues fencing tokens above store time in ms x 1000, so they go up across processes and failovers', async () => {
      await store.startRun(job, 'r');
      const before = (await store.state(job)).now;
      const lease = await leaseFresh(A, [1]);
      expect(lease.token).toBeGreaterThan(before * 1000);
      expect(Number.isSafeInteger(lease.token)).toBe(true);
      const next = await leaseFresh(A, [2]);
      expect(next.token).toBeGreaterThan(lease.token);
    });

    describe('each app steers only its own jobs', () => {
      const appA = 'UsersBackfill.next + UsersBackfill.handle';
      const appB = 'Reindex.next + Reindex.handle';
      const otherApp = (call: string) =>
        new RegExp(
          `^Job "${job}" in this store belongs to another app, which declares it as UsersBackfill\\.next \\+ UsersBackfill\\.handle; this app declares it as Reindex\\.next \\+ Reindex\\.handle, so its ${call}\\(\\) is refused: an app steers only its own jobs\\. `,
        );
      /** Every call an app makes on a job besides run(), with the public name its refusal gives. */
      const calls = (s: CoordinationStore, by: string) => ({
        status: () => s.state(job, by),
        pause: () => s.control(job, 'pause', by),
        resume: () => s.control(job, 'resume', by),
        cancel: () => s.control(job, 'cancel', by),
        reset: () => s.reset(job, by),
        retryDead: () => s.retryDead(job, by),
        deadLetters: () => s.deadLetters(job, { offset: 0, limit: 10 }, by),
        history: () =>
          (s.history as NonNullable<typeof s.history>).call(s, job, 10, by),
        leasesByHost: () =>
          (s.leasesByOwner as NonNullable<typeof s.leasesByOwner>).call(
            s,
            job,
            by,
          ),
      });

      it('refuses every call of another app on the job, changing nothing, whether a run is active or not', async () => {
        await store.startRun(job, 'r1', undefined, appA);
        const dead = await leaseFresh(A, [1, 2]);
        await store.fail(job, A, dead.token, {
          error: { message: 'poison' },
          dead: true,
          retryInMs: 0,
        });
        await leaseFresh(A, [3]);
        const before = await store.state(job);
        const refuseAll = async () => {
          for (const [call, act] of Object.entries(calls(store, appB))) {
            const refused = act().then(
              () => undefined,
              (e: unknown) => e,
            );
            const error = (await refused) as RunRefusedError | undefined;
            expect(error).toBeInstanceOf(RunRefusedError);
            expect(error).toMatchObject({ job });
            expect(error?.message).toMatch(otherApp(call));
          }
        };
        await refuseAll();
        const after = await store.state(job);
        expect({ ...after, now: 0 }).toEqual({ ...before, now: 0 });
        expect(await store.deadLetters(job)).toHaveLength(1);
        await store.control(job, 'cancel', appA);
        await refuseAll();
        expect(await store.state(job)).toMatchObject({
          state: 'stopped',
          cursor: 3,
          dead: 1,
        });
      });

      it('allows the app that declares the job, and a caller that names no app (the CLI)', async () => {
        await store.startRun(job, 'r1', undefined, appA);
        const dead = await leaseFresh(A, [1, 2]);
        await store.fail(job, A, dead.token, {
          error: { message: 'poison' },
          dead: true,
          retryInMs: 0,
        });
        for (const by of [appA, undefined]) {
          const call = calls(store, by as string);
          expect(await call.status()).toMatchObject({ runId: 'r1', dead: 1 });
          expect(await call.pause()).toBe('r1');
          expect((await store.state(job)).control).toBe('pause');
          expect(await call.resume()).toBe('r1');
          expect(await call.deadLetters()).toHaveLength(1);
          expect(await call.history()).toEqual([]);
          expect(await call.leasesByHost()).toEqual({});
        }
        expect(await store.retryDead(job, appA)).toBe(1);
        expect(await store.control(job, 'cancel', appA)).toBe('r1');
        await store.reset(job, appA);
        expect(await store.state(job)).toMatchObject({
          state: 'idle',
          cursor: null,
        });
      });

      it('lets any app act on a job with no declaration stored yet; the first run() stores it', async () => {
        const call = calls(store, appB);
        expect(await call.status()).toMatchObject({ state: 'idle' });
        expect(await call.deadLetters()).toEqual([]);
        expect(await call.history()).toEqual([]);
        expect(await call.retryDead()).toBe(0);
        await call.reset();
        // A run started by a store user that names no app stores none either.
        await store.startRun(job, 'r1');
        expect(await call.pause()).toBe('r1');
        expect(await call.cancel()).toBe('r1');
        await store.startRun(job, 'r2', undefined, appA);
        await expect(call.status()).rejects.toThrow(otherApp('status'));
      });
    });

    (reopens ? describe : describe.skip)(
      'a fresh process over the same state (a new store instance)',
      () => {
        const appA = 'UsersBackfill.next + UsersBackfill.handle';
        const appB = 'Reindex.next + Reindex.handle';
        const fresh = (): CoordinationStore => {
          if (!reopen) throw new Error(`${name} cannot be reopened`);
          return reopen();
        };

        /** A run of appA that dead-lettered one range, completed another and holds a third; returns the tokens it issued. */
        const stored = async (): Promise<number[]> => {
          await store.startRun(job, 'r1', undefined, appA);
          const dead = await leaseFresh(A, [1, 2]);
          await store.fail(job, A, dead.token, {
            error: { message: 'poison' },
            dead: true,
            retryInMs: 0,
          });
          const done = await leaseFresh(A, [3]);
          await store.complete(job, A, [done.token]);
          const held = await leaseFresh(A, [4]);
          return [dead.token, done.token, held.token];
        };

        it('resets as its first call without losing dead letters, history, the declaration or the tokens', async () => {
          const tokens = await stored();
          await store.release(job, A, [tokens[2]]);
          await store.endRun(job, 'r1', 'completed');
          await store.leave?.(job, A);
          const record = { runId: 'r1', job, status: 'completed' } as const;
          await store.recordRun?.(
            job,
            {
              ...record,
              params: null,
              startedBy: null,
              host: A,
              startedAt: 1,
              endedAt: 2,
              summary: {
                job,
                runId: 'r1',
                status: 'completed',
                ids: 1,
                ranges: { completed: 1, retried: 0, dead: 1 },
                workers: { started: 0, restarted: 0 },
                durationMs: 1,
                host: { ids: 1, ranges: 1 },
              },
              deadLetters: 1,
            },
            10,
          );
          const next = fresh();
          await next.reset(job, appA);
          expect(await next.deadLetters(job)).toHaveLength(1);
          expect(await next.history?.(job, 10)).toEqual([
            expect.objectContaining(record),
          ]);
          expect(await next.state(job)).toMatchObject({
            state: 'idle',
            cursor: null,
            dead: 1,
          });
          await expect(next.state(job, appB)).rejects.toThrow(
            /belongs to another app, which declares it as UsersBackfill\.next/,
          );
          await next.startRun(job, 'r2', undefined, appA);
          const again = await next.claim(job, A, LEASE);
          expect(again.type).toBe('load');
          const after = await next.commit(
            job,
            A,
            null,
            [range([1], null)],
            LEASE,
          );
          if (after.type !== 'leased') throw new Error(after.type);
          expect(after.leases[0].token).toBeGreaterThan(Math.max(...tokens));
        });

        it('pauses and cancels the stored active run as its first call', async () => {
          await stored();
          const second = fresh();
          expect(await second.control(job, 'pause', appA)).toBe('r1');
          expect(await second.state(job)).toMatchObject({
            runId: 'r1',
            state: 'running',
            control: 'pause',
            cursor: 4,
            leased: 1,
            dead: 1,
          });
          const third = fresh();
          expect(await third.control(job, 'cancel')).toBe('r1');
          expect(await third.state(job)).toMatchObject({
            runId: 'r1',
            state: 'stopped',
            cursor: 4,
            leased: 1,
            dead: 1,
            counters: { ids: 1, completed: 1, dead: 1 },
          });
          expect(await fresh().deadLetters(job)).toHaveLength(1);
        });

        it("refuses another app's first call, and keeps the job the stored app's", async () => {
          await stored();
          for (const first of [
            (s: CoordinationStore) => s.control(job, 'cancel', appB),
            (s: CoordinationStore) => s.reset(job, appB),
            (s: CoordinationStore) => s.retryDead(job, appB),
          ]) {
            await expect(first(fresh())).rejects.toThrow(
              /belongs to another app, which declares it as UsersBackfill\.next/,
            );
          }
          expect(await fresh().state(job, appA)).toMatchObject({
            runId: 'r1',
            state: 'running',
            dead: 1,
            leased: 1,
          });
        });
      },
    );

    it('tells other hosts when the run failed', async () => {
      await store.startRun(job, 'r');
      await store.endRun(job, 'r', 'failed', 'bad loader output');
      expect(await store.claim(job, B, LEASE)).toEqual({
        type: 'failed',
        error: 'bad loader output',
      });
    });

    it('hands ranges left over by a failed run to the next run', async () => {
      await store.startRun(job, 'r1');
      const lease = await leaseFresh(A, [1, 2]);
      await store.release(job, A, [lease.token]);
      await store.endRun(job, 'r1', 'failed', 'x');
      await store.startRun(job, 'r2');
      expect(await store.claim(job, A, LEASE)).toMatchObject({
        type: 'lease',
        lease: { runId: 'r2', range: { ids: [1, 2] } },
      });
    });

    describe('partitions', () => {
      const BOUNDS = [
        { after: null, upTo: 100 },
        { after: 100, upTo: 200 },
        { after: 200, upTo: null },
      ];
      const load = async (owner: string, loading?: number[]) => {
        const claim = await store.claim(job, owner, LEASE, undefined, loading);
        if (claim.type !== 'load' || claim.partition === undefined)
          throw new Error(
            `expected a partition to load, got ${JSON.stringify(claim)}`,
          );
        return claim as { cursor: number | null; partition: number };
      };

      it('stores the partitions with the run, each with its own cursor, and gives each host a different one', async () => {
        await store.startRun(job, 'r', undefined, undefined, BOUNDS);
        const a = await load(A);
        const b = await load(B);
        expect(a.partition).not.toBe(b.partition);
        expect(a.cursor).toBe(BOUNDS[a.partition].after);
        // A host loading two partitions at once names the one it loads.
        const a2 = await load(A, [a.partition]);
        expect([a.partition, b.partition]).not.toContain(a2.partition);
        let s = await store.state(job);
        expect(s.partitions).toHaveLength(3);
        expect(s.partitions?.map((p) => p.cursor)).toEqual([null, 100, 200]);
        expect(s.partitions?.[a.partition].loader?.owner).toBe(A);
        // Every partition is being loaded: a third host takes one over from A, which holds more than its share.
        const c = await load('host-c');
        expect([a.partition, a2.partition]).toContain(c.partition);
        s = await store.state(job);
        expect(s.partitions?.map((p) => p.loader?.owner).sort()).toEqual(
          [A, B, 'host-c'].sort(),
        );
        // A fourth finds nothing it may take: every host holds its share.
        expect(await store.claim(job, 'host-d', LEASE)).toMatchObject({
          type: 'wait',
        });
      });

      it('commits per partition: compare-and-set on that partition cursor only, and counts its ids', async () => {
        await store.startRun(job, 'r', undefined, undefined, BOUNDS);
        expect((await load(A)).partition).toBe(0);
        expect((await load(B)).partition).toBe(1);
        // Partition 1 starts after 100: a commit expecting its cursor leases.
        const r = await store.commit(
          job,
          B,
          100,
          [range([101, 102], 100)],
          LEASE,
          undefined,
          1,
        );
        expect(r).toMatchObject({
          type: 'leased',
          leases: [{ range: { ids: [101, 102] } }],
        });
        // A stale commit on partition 1 conflicts with that partition's cursor.
        expect(
          await store.commit(
            job,
            B,
            100,
            [range([101], 100)],
            LEASE,
            undefined,
            1,
          ),
        ).toEqual({ type: 'conflict', cursor: 102 });
        // Partition 0's cursor did not move.
        expect(
          await store.commit(
            job,
            A,
            null,
            [range([1], null)],
            LEASE,
            undefined,
            0,
          ),
        ).toMatchObject({ type: 'leased' });
        const s = await store.state(job);
        expect(s.partitions?.map((p) => [p.cursor, p.ids])).toEqual([
          [1, 1],
          [102, 2],
          [200, 0],
        ]);
      });

      it('ends loading once every partition is exhausted, and the run once nothing is leased', async () => {
        await store.startRun(job, 'r', undefined, undefined, BOUNDS);
        const leases: number[] = [];
        for (let i = 0; i < 3; i++) {
          const c = await load(A, []);
          const ids = [Number(c.cursor ?? 0) + 1];
          const r = await store.commit(
            job,
            A,
            c.cursor,
            [range(ids, c.cursor)],
            LEASE,
            undefined,
            c.partition,
          );
          if (r.type === 'leased') leases.push(...r.leases.map((l) => l.token));
          expect(
            await store.commit(
              job,
              A,
              ids[0],
              [],
              LEASE,
              undefined,
              c.partition,
            ),
          ).toEqual({ type: 'exhausted' });
        }
        expect((await store.state(job)).exhausted).toBe(true);
        expect(await store.claim(job, A, LEASE)).toMatchObject({
          type: 'wait',
        });
        await store.complete(job, A, leases);
        expect(await store.claim(job, A, LEASE)).toEqual({ type: 'done' });
      });

      it('spreads partitions over hosts: one with less than its share takes one over from a host with more, whose next commit there is refused', async () => {
        await store.startRun(
          job,
          'r',
          undefined,
          undefined,
          BOUNDS.slice(0, 2),
        );
        // Alone, host A takes both.
        const a0 = await load(A, []);
        const a1 = await load(A, [a0.partition]);
        expect([a0.partition, a1.partition].sort()).toEqual([0, 1]);
        // B joins with none: it takes one of A's two over.
        const b = await load(B);
        expect([a0.partition, a1.partition]).toContain(b.partition);
        const lost = b.partition === a0.partition ? a0 : a1;
        const kept = b.partition === a0.partition ? a1 : a0;
        // A's next commit there is refused (its load is thrown away); B's goes through.
        expect(
          await store.commit(
            job,
            A,
            lost.cursor,
            [range([Number(lost.cursor ?? 0) + 1], lost.cursor)],
            LEASE,
            undefined,
            lost.partition,
          ),
        ).toEqual({ type: 'conflict', cursor: lost.cursor });
        expect(
          await store.commit(
            job,
            B,
            b.cursor,
            [range([Number(b.cursor ?? 0) + 1], b.cursor)],
            LEASE,
            undefined,
            b.partition,
          ),
        ).toMatchObject({ type: 'leased' });
        // A holds its share (one of two): it takes no other, and B takes nothing more from it.
        expect(
          await store.claim(job, A, LEASE, undefined, [kept.partition]),
        ).toMatchObject({ type: 'wait' });
        expect(
          await store.claim(job, B, LEASE, undefined, [b.partition]),
        ).toMatchObject({ type: 'wait' });
        expect(
          await store.commit(
            job,
            A,
            kept.cursor,
            [range([Number(kept.cursor ?? 0) + 1], kept.cursor)],
            LEASE,
            undefined,
            kept.partition,
          ),
        ).toMatchObject({ type: 'leased' });
      });

      it('frees a partition whose host went quiet (its lease time passed) or left', async () => {
        await store.startRun(
          job,
          'r',
          undefined,
          undefined,
          BOUNDS.slice(0, 1),
        );
        expect(await store.claim(job, A, 50, undefined, [])).toMatchObject({
          partition: 0,
        });
        expect(await store.claim(job, B, LEASE)).toMatchObject({
          type: 'wait',
        });
        await sleep(80);
        expect(await store.claim(job, B, LEASE)).toMatchObject({
          type: 'load',
          partition: 0,
        });
        await store.leave?.(job, B);
        expect(await store.claim(job, A, LEASE)).toMatchObject({
          type: 'load',
          partition: 0,
        });
        // A heartbeat keeps it the owner's.
        await sleep(20);
        await store.heartbeat(job, A, [], LEASE);
        expect(await store.claim(job, B, LEASE)).toMatchObject({
          type: 'wait',
        });
      });

      it('keeps the partitions and their cursors for the next run, replaces them with from, forgets them on reset', async () => {
        await store.startRun(job, 'r1', undefined, undefined, BOUNDS);
        const c = await load(A);
        const r = await store.commit(
          job,
          A,
          c.cursor,
          [range([Number(c.cursor ?? 0) + 5], c.cursor)],
          LEASE,
          undefined,
          c.partition,
        );
        if (r.type === 'leased')
          await store.complete(
            job,
            A,
            r.leases.map((l) => l.token),
          );
        await store.endRun(job, 'r1', 'completed');
        await store.leave?.(job, A);
        // The next run keeps them, whatever it passes; exhausted flags and counts start over.
        await store.startRun(job, 'r2', undefined, undefined, [
          { after: null, upTo: null },
        ]);
        let s = await store.state(job);
        expect(s.partitions).toHaveLength(3);
        expect(s.partitions?.[c.partition]).toMatchObject({
          cursor: Number(c.cursor ?? 0) + 5,
          exhausted: false,
          ids: 0,
        });
        await store.endRun(job, 'r2', 'completed');
        // from replaces them (none given: none kept).
        await store.startRun(job, 'r3', 150, undefined, [
          { after: 150, upTo: null },
        ]);
        s = await store.state(job);
        expect(s.partitions).toEqual([
          { after: 150, upTo: null, cursor: 150, exhausted: false, ids: 0 },
        ]);
        await store.endRun(job, 'r3', 'completed');
        await store.reset(job);
        expect((await store.state(job)).partitions).toBeUndefined();
        await store.startRun(job, 'r4');
        expect(await store.claim(job, A, LEASE)).toEqual({
          type: 'load',
          cursor: null,
        });
      });

      it('stores a new plan only against the cursor it was planned from (compare-and-set), else changes nothing and says where the cursor is', async () => {
        await store.startRun(job, 'r1', 150);
        await store.endRun(job, 'r1', 'completed');
        const clipped = [{ after: 150, upTo: null }];
        // Planned from 150, but a reset moved the cursor back meanwhile.
        await store.reset(job);
        expect(
          await store.startRun(
            job,
            'r2',
            undefined,
            undefined,
            clipped,
            undefined,
            150,
          ),
        ).toEqual({ replanFrom: null });
        let s = await store.state(job);
        expect(s).toMatchObject({ state: 'idle', cursor: null });
        expect(s.partitions).toBeUndefined();
        // A job with partitions that passes none (it read stored ones, gone since) plans them again too.
        expect(
          await store.startRun(
            job,
            'r2',
            undefined,
            undefined,
            undefined,
            undefined,
            null,
          ),
        ).toEqual({ replanFrom: null });
        expect((await store.state(job)).state).toBe('idle');
        // Planned from the cursor the job has: stored.
        expect(
          await store.startRun(
            job,
            'r2',
            undefined,
            undefined,
            BOUNDS,
            undefined,
            null,
          ),
        ).toEqual({ runId: 'r2', joined: false });
        s = await store.state(job);
        expect(s.partitions?.map((p) => p.cursor)).toEqual([null, 100, 200]);
        await store.endRun(job, 'r2', 'completed');
        // Partitions stored: they are kept, whatever cursor the caller planned from.
        expect(
          await store.startRun(
            job,
            'r3',
            undefined,
            undefined,
            clipped,
            undefined,
            150,
          ),
        ).toEqual({ runId: 'r3', joined: false });
        expect((await store.state(job)).partitions).toHaveLength(3);
        await store.endRun(job, 'r3', 'completed');
        // from sets the cursor the plan is clipped at in the same step: nothing to compare.
        expect(
          await store.startRun(
            job,
            'r4',
            150,
            undefined,
            clipped,
            undefined,
            7,
          ),
        ).toEqual({ runId: 'r4', joined: false });
        expect((await store.state(job)).partitions).toEqual([
          { after: 150, upTo: null, cursor: 150, exhausted: false, ids: 0 },
        ]);
      });
    });
  });
}
