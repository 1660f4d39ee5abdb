import type { CoordinationStore, RunRecord, StoredRange } from '../../lib';
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
      const claim = await store.job(job).claim({ owner, leaseMs: LEASE });
      if (claim.type !== 'load')
        throw new Error(`expected load, got ${claim.type}`);
      const result = await store.job(job).commit({
        owner,
        expected: claim.cursor,
        ranges: [range(ids, claim.cursor as number | null)],
        leaseMs: LEASE,
      });
      if (result.type !== 'leased')
        throw new Error(`expected leased, got ${result.type}`);
      return result.leases[0];
    };

    it('starts a run, then joins it instead of starting a second one', async () => {
      expect(await store.job(job).start({ runId: 'run-1' })).toEqual({
        runId: 'run-1',
        joined: false,
      });
      expect(await store.job(job).start({ runId: 'run-2' })).toEqual({
        runId: 'run-1',
        joined: true,
      });
      expect((await store.job(job).state()).state).toBe('running');
    });

    it('hands out the cursor for a load, commits with increasing tokens and moves the cursor', async () => {
      await store.job(job).start({ runId: 'r' });
      expect(await store.job(job).claim({ owner: A, leaseMs: LEASE })).toEqual({
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
      const s = await store.job(job).state();
      expect(s).toMatchObject({ cursor: 5, leased: 2, retrying: 0 });
    });

    it('commits, renews and completes thousands of leases in one call each', async () => {
      await store.job(job).start({ runId: 'r' });
      const ranges = Array.from({ length: 5000 }, (_, i) =>
        range([i * 2 + 1, i * 2 + 2], i === 0 ? null : i * 2),
      );
      const r = await store
        .job(job)
        .commit({ owner: A, expected: null, ranges, leaseMs: LEASE });
      if (r.type !== 'leased') throw new Error('expected leased');
      const tokens = r.leases.map((l) => l.token);
      expect(new Set(tokens).size).toBe(5000);
      expect(
        await store.job(job).heartbeat({ owner: A, tokens, leaseMs: LEASE }),
      ).toEqual([]);
      expect(
        await store
          .job(job)
          .heartbeat({ owner: B, tokens: tokens.slice(0, 3), leaseMs: LEASE }),
      ).toEqual(tokens.slice(0, 3));
      // A token twice in one call counts once.
      expect(
        await store
          .job(job)
          .complete({ owner: A, tokens: [...tokens, tokens[0]] }),
      ).toEqual([...tokens.map(() => true), false]);
      expect(await store.job(job).state()).toMatchObject({
        cursor: 10_000,
        leased: 0,
        counters: { ids: 10_000, completed: 5000 },
      });
    });

    it('commits consecutive ranges in one step, with increasing tokens', async () => {
      await store.job(job).start({ runId: 'r' });
      const r = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1, 2], null), range([3], 2), range([5, 8], 3)],
        leaseMs: LEASE,
      });
      if (r.type !== 'leased') throw new Error('expected leased');
      expect(r.leases.map((l) => l.range.ids)).toEqual([[1, 2], [3], [5, 8]]);
      expect(r.leases[1].token).toBe(r.leases[0].token + 1);
      expect(r.leases[2].token).toBe(r.leases[0].token + 2);
      expect(
        r.leases.every(
          (l) => l.attempt === 1 && l.owner === A && l.runId === 'r',
        ),
      ).toBe(true);
      expect(await store.job(job).state()).toMatchObject({
        cursor: 8,
        leased: 3,
      });
      expect(
        await store.job(job).commit({
          owner: B,
          expected: 3,
          ranges: [range([5, 8], 3)],
          leaseMs: LEASE,
        }),
      ).toEqual({
        type: 'conflict',
        cursor: 8,
      });
    });

    it('refuses a commit from a stale cursor (another host moved it first)', async () => {
      await store.job(job).start({ runId: 'r' });
      const a = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      const b = await store.job(job).claim({ owner: B, leaseMs: LEASE });
      expect(a).toEqual({ type: 'load', cursor: null });
      expect(b).toEqual({ type: 'load', cursor: null });
      expect(
        (
          await store.job(job).commit({
            owner: A,
            expected: null,
            ranges: [range([1, 2], null)],
            leaseMs: LEASE,
          })
        ).type,
      ).toBe('leased');
      expect(
        await store.job(job).commit({
          owner: B,
          expected: null,
          ranges: [range([1, 2], null)],
          leaseMs: LEASE,
        }),
      ).toEqual({ type: 'conflict', cursor: 2 });
      expect(await store.job(job).claim({ owner: B, leaseMs: LEASE })).toEqual({
        type: 'load',
        cursor: 2,
      });
      expect((await store.job(job).state()).leased).toBe(1);
    });

    it('keeps ids as numbers or strings, as the loader returned them', async () => {
      await store.job(job).start({ runId: 'r' });
      const r = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [
          {
            ids: ['9007199254740993', '9007199254740995'],
            lastId: '9007199254740995',
            prev: null,
            payload: { shard: 'x' },
          },
        ],
        leaseMs: LEASE,
      });
      expect(r.type === 'leased' && r.leases[0].range).toEqual({
        ids: ['9007199254740993', '9007199254740995'],
        lastId: '9007199254740995',
        prev: null,
        payload: { shard: 'x' },
      });
      expect(await store.job(job).claim({ owner: A, leaseMs: LEASE })).toEqual({
        type: 'load',
        cursor: '9007199254740995',
      });
    });

    it('completes several ranges in one call, counting each only once', async () => {
      await store.job(job).start({ runId: 'r' });
      const a = await leaseFresh(A, [1, 2]);
      const b = await leaseFresh(A, [3]);
      expect(
        await store
          .job(job)
          .complete({ owner: A, tokens: [a.token, 999, b.token, a.token] }),
      ).toEqual([true, false, true, false]);
      expect((await store.job(job).state()).counters).toMatchObject({
        ids: 3,
        completed: 2,
      });
    });

    it('says on commit whether older work is due, so the host claims before loading again', async () => {
      await store.job(job).start({ runId: 'r' });
      const a = await leaseFresh(A, [1]);
      await store.job(job).fail({
        owner: A,
        token: a.token,
        error: { message: 'x' },
        dead: false,
        retryInMs: 0,
      });
      const r = await store.job(job).commit({
        owner: A,
        expected: 1,
        ranges: [range([2], 1)],
        leaseMs: LEASE,
      });
      expect(r).toMatchObject({ type: 'leased', due: true });
      await store.job(job).claim({ owner: A, leaseMs: LEASE });
      expect(
        await store.job(job).commit({
          owner: A,
          expected: 2,
          ranges: [range([3], 2)],
          leaseMs: LEASE,
        }),
      ).toMatchObject({ type: 'leased', due: false });
    });

    it('completes by token and owner, counting ids once; a stale completion is not counted', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [1, 2, 3]);
      expect(
        await store.job(job).complete({ owner: B, tokens: [lease.token] }),
      ).toEqual([false]);
      expect(
        await store.job(job).complete({ owner: A, tokens: [lease.token] }),
      ).toEqual([true]);
      expect(
        await store.job(job).complete({ owner: A, tokens: [lease.token] }),
      ).toEqual([false]);
      expect((await store.job(job).state()).counters).toMatchObject({
        ids: 3,
        completed: 1,
      });
    });

    it('re-leases an expired lease first, with attempt + 1 and a new token; the old holder loses it', async () => {
      await store.job(job).start({ runId: 'r' });
      const claim = await store.job(job).claim({ owner: A, leaseMs: 50 });
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1, 2], null)],
        leaseMs: 50,
      });
      if (res.type !== 'leased') throw new Error('expected leased');
      await sleep(120);
      const taken = await store.job(job).claim({ owner: B, leaseMs: LEASE });
      expect(taken).toMatchObject({
        type: 'lease',
        reason: 'expired',
        lease: { attempt: 2, owner: B, range: { ids: [1, 2] } },
      });
      if (taken.type !== 'lease') throw new Error('expected lease');
      expect(taken.lease.token).toBeGreaterThan(res.leases[0].token);
      expect(
        await store.job(job).heartbeat({
          owner: A,
          tokens: [res.leases[0].token],
          leaseMs: LEASE,
        }),
      ).toEqual([res.leases[0].token]);
      expect(
        await store
          .job(job)
          .complete({ owner: A, tokens: [res.leases[0].token] }),
      ).toEqual([false]);
      expect(
        await store
          .job(job)
          .complete({ owner: B, tokens: [taken.lease.token] }),
      ).toEqual([true]);
      expect((await store.job(job).state()).counters).toMatchObject({
        ids: 2,
        completed: 1,
        retried: 1,
      });
    });

    it('refuses to complete a lease past its deadline, even one its owner still holds; it goes out again at attempt + 1', async () => {
      await store.job(job).start({ runId: 'r' });
      const claim = await store.job(job).claim({ owner: A, leaseMs: 50 });
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1, 2], null)],
        leaseMs: 50,
      });
      if (res.type !== 'leased') throw new Error('expected leased');
      await sleep(120);
      // No one took it over yet: the owner still holds it, but its deadline passed.
      expect(
        await store
          .job(job)
          .complete({ owner: A, tokens: [res.leases[0].token] }),
      ).toEqual([false]);
      expect((await store.job(job).state()).counters).toMatchObject({
        ids: 0,
        completed: 0,
      });
      expect(
        await store.job(job).claim({ owner: B, leaseMs: LEASE }),
      ).toMatchObject({
        type: 'lease',
        reason: 'expired',
        lease: { attempt: 2, owner: B, range: { ids: [1, 2] } },
      });
    });

    it('keeps a heartbeated lease alive past its first deadline', async () => {
      await store.job(job).start({ runId: 'r' });
      const claim = await store.job(job).claim({ owner: A, leaseMs: 80 });
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1], null)],
        leaseMs: 80,
      });
      if (res.type !== 'leased') throw new Error('expected leased');
      for (let i = 0; i < 4; i++) {
        await sleep(40);
        expect(
          await store.job(job).heartbeat({
            owner: A,
            tokens: [res.leases[0].token],
            leaseMs: 80,
          }),
        ).toEqual([]);
      }
      expect(await store.job(job).claim({ owner: B, leaseMs: LEASE })).toEqual({
        type: 'load',
        cursor: 1,
      });
    });

    it('schedules a failed range for retry (attempt + 1, after its delay) or sends it to the dead letters', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [1, 2]);
      expect(
        await store.job(job).fail({
          owner: A,
          token: lease.token,
          error: { message: 'boom' },
          dead: false,
          retryInMs: 100,
        }),
      ).toBe('retry');
      expect(
        await store.job(job).fail({
          owner: A,
          token: lease.token,
          error: { message: 'boom' },
          dead: false,
          retryInMs: 100,
        }),
      ).toBe('stale');
      expect(await store.job(job).claim({ owner: A, leaseMs: LEASE })).toEqual({
        type: 'load',
        cursor: 2,
      });
      await sleep(130);
      const retry = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      expect(retry).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 2, range: { ids: [1, 2] } },
      });
      if (retry.type !== 'lease') throw new Error('expected lease');
      expect(
        await store.job(job).fail({
          owner: A,
          token: retry.lease.token,
          error: { message: 'again', stack: 'Error: again\n  at x' },
          dead: true,
          retryInMs: 0,
        }),
      ).toBe('dead');
      const dead = await store.job(job).deadLetters();
      expect(dead).toEqual([
        expect.objectContaining({
          runId: 'r',
          attempts: 2,
          range: expect.objectContaining({ ids: [1, 2] }),
          error: { message: 'again', stack: 'Error: again\n  at x' },
        }),
      ]);
      expect(await store.job(job).state()).toMatchObject({
        dead: 1,
        counters: { retried: 1, dead: 1 },
      });
    });

    it('keeps params, startedBy and host with the run; a joining host gets its params back', async () => {
      const params = '{"big":12345678901234567890,"since":"2026-01-01"}';
      expect(
        await store.job(job).start({
          runId: 'p1',
          start: {
            params,
            startedBy: 'ops@example.com',
            host: 'host-a',
          },
        }),
      ).toEqual({ runId: 'p1', joined: false });
      expect(
        await store.job(job).start({
          runId: 'p2',
          start: {
            params: '{"other":1}',
            host: 'host-b',
          },
        }),
      ).toEqual({ runId: 'p1', joined: true, params });
      expect(await store.job(job).state()).toMatchObject({
        runId: 'p1',
        params,
        startedBy: 'ops@example.com',
        startedOn: 'host-a',
      });
      await store.job(job).endRun({ runId: 'p1', state: 'completed' });
      // A run without params has none (not the last run's).
      await store.job(job).start({
        runId: 'p3',
        start: {
          host: 'host-b',
        },
      });
      const s = await store.job(job).state();
      expect(s.params).toBeUndefined();
      expect(s.startedBy).toBeUndefined();
      expect(s.startedOn).toBe('host-b');
      expect(await store.job(job).start({ runId: 'p4' })).toEqual({
        runId: 'p3',
        joined: true,
      });
    });

    it('retries only the ids that failed of a range; the others count as done, as a range that ended done', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [1, 2, 3, 4, 5]);
      expect(
        await store.job(job).fail({
          owner: A,
          token: lease.token,
          error: { message: 'two rows failed' },
          ids: [2, 4],
          dead: false,
          retryInMs: 0,
        }),
      ).toBe('retry');
      expect(await store.job(job).state()).toMatchObject({
        counters: { ids: 3, completed: 1, retried: 1 },
        retrying: 1,
      });
      const retry = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      expect(retry).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 2, range: { ids: [2, 4], prev: null, lastId: 5 } },
      });
      if (retry.type !== 'lease') throw new Error('expected lease');
      expect(
        await store.job(job).fail({
          owner: A,
          token: retry.lease.token,
          error: { message: 'still failing' },
          ids: [4],
          dead: true,
          retryInMs: 0,
        }),
      ).toBe('dead');
      expect(await store.job(job).state()).toMatchObject({
        counters: { ids: 4, completed: 2, retried: 1, dead: 1 },
        dead: 1,
      });
      expect(await store.job(job).deadLetters()).toEqual([
        expect.objectContaining({
          attempts: 2,
          range: expect.objectContaining({ ids: [4] }),
          error: { message: 'still failing' },
        }),
      ]);
    });

    it('splits a failed range in two for its retry: halves by id, each after the cursor before it, both at attempt + 1; counted once', async () => {
      await store.job(job).start({ runId: 'r' });
      const claim = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [{ ...range([3, 5, 8, 9, 12], 1), payload: { day: 'mon' } }],
        leaseMs: LEASE,
      });
      if (res.type !== 'leased') throw new Error('expected leased');
      const commit2 = await store.job(job).commit({
        owner: A,
        expected: 12,
        ranges: [],
        leaseMs: LEASE,
      });
      expect(commit2.type).toBe('exhausted');
      expect(
        await store.job(job).fail({
          owner: A,
          token: res.leases[0].token,
          error: { message: 'timed out' },
          dead: false,
          retryInMs: 60,
          split: true,
        }),
      ).toBe('retry');
      expect(await store.job(job).state()).toMatchObject({
        counters: { ids: 0, completed: 0, retried: 1, dead: 0 },
        retrying: 2,
        leased: 0,
      });
      // Both wait out the same delay.
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE }),
      ).toMatchObject({ type: 'wait' });
      await sleep(90);
      const first = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      const second = await store.job(job).claim({ owner: B, leaseMs: LEASE });
      if (first.type !== 'lease' || second.type !== 'lease')
        throw new Error('expected two leases');
      expect(first).toMatchObject({ reason: 'retry', lease: { attempt: 2 } });
      expect(second).toMatchObject({
        reason: 'retry',
        lease: { attempt: 2, owner: B },
      });
      expect(first.lease.range).toEqual({
        ids: [3, 5, 8],
        prev: 1,
        lastId: 8,
        payload: { day: 'mon' },
      });
      expect(second.lease.range).toEqual({
        ids: [9, 12],
        prev: 8,
        lastId: 12,
        payload: { day: 'mon' },
      });
      expect(first.lease.token).not.toBe(second.lease.token);
      expect(
        await store
          .job(job)
          .complete({ owner: B, tokens: [second.lease.token] }),
      ).toEqual([true]);
      expect(
        await store
          .job(job)
          .complete({ owner: A, tokens: [first.lease.token] }),
      ).toEqual([true]);
      expect(await store.job(job).state()).toMatchObject({
        counters: { ids: 5, completed: 2, retried: 1, dead: 0 },
        retrying: 0,
        leased: 0,
      });
      expect(await store.job(job).claim({ owner: A, leaseMs: LEASE })).toEqual({
        type: 'done',
      });
    });

    it('splits down to one id: a range of one id is retried whole; dead ignores split; a lost lease is stale', async () => {
      await store.job(job).start({ runId: 'r' });
      const one = await leaseFresh(A, [7]);
      expect(
        await store.job(job).fail({
          owner: A,
          token: one.token,
          error: { message: 'timed out' },
          dead: false,
          retryInMs: 0,
          split: true,
        }),
      ).toBe('retry');
      expect((await store.job(job).state()).retrying).toBe(1);
      const again = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      expect(again).toMatchObject({
        type: 'lease',
        lease: { attempt: 2, range: { ids: [7], prev: null, lastId: 7 } },
      });
      if (again.type !== 'lease') throw new Error('expected lease');
      expect(
        await store.job(job).fail({
          owner: A,
          token: again.lease.token,
          error: { message: 'timed out' },
          dead: false,
          retryInMs: 0,
          split: true,
        }),
      ).toBe('retry');
      expect(
        await store.job(job).fail({
          owner: A,
          token: again.lease.token,
          error: { message: 'timed out' },
          dead: false,
          retryInMs: 0,
          split: true,
        }),
      ).toBe('stale');
      const third = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      if (third.type !== 'lease') throw new Error('expected lease');
      const pair = await store.job(job).commit({
        owner: A,
        expected: 7,
        ranges: [range([8, 9], 7)],
        leaseMs: LEASE,
      });
      if (pair.type !== 'leased') throw new Error('expected leased');
      expect(
        await store.job(job).fail({
          owner: A,
          token: pair.leases[0].token,
          error: { message: 'timed out for good' },
          dead: true,
          retryInMs: 0,
          split: true,
        }),
      ).toBe('dead');
      expect(await store.job(job).deadLetters()).toEqual([
        expect.objectContaining({
          attempts: 1,
          range: { ids: [8, 9], prev: 7, lastId: 9 },
        }),
      ]);
      expect(await store.job(job).state()).toMatchObject({
        counters: { retried: 2, dead: 1 },
        retrying: 0,
        dead: 1,
        leased: 1,
      });
    });

    it('splits the ids of a partial failure that it retries, and keeps run and the range edges', async () => {
      await store.job(job).start({ runId: 'r' });
      const claim = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [{ ...range([1, 2, 3, 4, 5, 6], null), run: 'r0' }],
        leaseMs: LEASE,
      });
      if (res.type !== 'leased') throw new Error('expected leased');
      expect(
        await store.job(job).fail({
          owner: A,
          token: res.leases[0].token,
          error: { message: 'three rows failed' },
          ids: [2, 4, 6],
          dead: false,
          retryInMs: 0,
          split: true,
        }),
      ).toBe('retry');
      expect(await store.job(job).state()).toMatchObject({
        counters: { ids: 3, completed: 1, retried: 1 },
        retrying: 2,
      });
      const a = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      const b = await store.job(job).claim({ owner: A, leaseMs: LEASE });
      expect(a).toMatchObject({
        lease: { range: { ids: [2, 4], prev: null, lastId: 4, run: 'r0' } },
      });
      expect(b).toMatchObject({
        lease: { range: { ids: [6], prev: 4, lastId: 6, run: 'r0' } },
      });
    });

    it('counts nothing of a partial failure past its lease deadline: the lease stays, expires and the whole range goes out again at attempt + 1', async () => {
      await store.job(job).start({ runId: 'r' });
      const claim = await store.job(job).claim({ owner: A, leaseMs: 50 });
      if (claim.type !== 'load') throw new Error('expected load');
      const res = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1, 2, 3], null)],
        leaseMs: 50,
      });
      if (res.type !== 'leased') throw new Error('expected leased');
      await sleep(120);
      // No one took it over yet: the owner still holds it, but its deadline passed.
      expect(
        await store.job(job).fail({
          owner: A,
          token: res.leases[0].token,
          error: { message: 'one row failed' },
          ids: [2],
          dead: false,
          retryInMs: 0,
        }),
      ).toBe('stale');
      expect((await store.job(job).state()).counters).toMatchObject({
        ids: 0,
        completed: 0,
        retried: 0,
        dead: 0,
      });
      expect(
        await store.job(job).claim({ owner: B, leaseMs: LEASE }),
      ).toMatchObject({
        type: 'lease',
        reason: 'expired',
        lease: { attempt: 2, owner: B, range: { ids: [1, 2, 3] } },
      });
    });

    it('lists dead letters a page at a time, oldest first', async () => {
      await store.job(job).start({ runId: 'r' });
      for (let i = 1; i <= 5; i++) {
        const lease = await leaseFresh(A, [i]);
        await store.job(job).fail({
          owner: A,
          token: lease.token,
          error: { message: `e${i}` },
          dead: true,
          retryInMs: 0,
        });
      }
      const page = await store.job(job).deadLetters({ offset: 1, limit: 2 });
      expect(page.map((d) => d.range.ids)).toEqual([[2], [3]]);
      expect(
        (await store.job(job).deadLetters({ offset: 4, limit: 10 })).map(
          (d) => d.error.message,
        ),
      ).toEqual(['e5']);
      expect(
        await store.job(job).deadLetters({ offset: 5, limit: 10 }),
      ).toEqual([]);
      expect(await store.job(job).deadLetters()).toHaveLength(5);
    });

    it('keeps the newest records of ended runs; a record of the same run replaces it, but stopped never replaces an end', async () => {
      const handle = store.job(job);
      const { recordRun, history } = handle;
      if (!recordRun || !history)
        throw new Error(`${name} keeps no history: recordRun/history missing`);
      const record = (
        runId: string,
        status: 'completed' | 'stopped' | 'cancelled' | 'failed',
        extra: Partial<RunRecord> = {},
      ): RunRecord => ({
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
          heldMs: 0,
          host: { ids: 10, ranges: 1 },
        },
        deadLetters: 0,
        ...extra,
      });
      const add = (record: RunRecord, keep = 3) =>
        recordRun.call(handle, { record, keep });
      const list = async (limit = 10) =>
        (await history.call(handle, { limit })).map(
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
      const [d, c, b] = await history.call(handle, { limit: 10 });
      expect(d).toEqual(record('d', 'cancelled'));
      expect(c.host).toBe(B);
      expect(b.error).toBe('boom');
      // Kept across reset.
      await store.job(job).reset();
      expect(await list()).toHaveLength(3);
    });

    it('hands dead letters out again, once, with retryDead()', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [7, 8]);
      await store.job(job).fail({
        owner: A,
        token: lease.token,
        error: { message: 'poison' },
        dead: true,
        retryInMs: 0,
      });
      expect((await store.job(job).state()).dead).toBe(1);
      expect(await store.job(job).retryDead()).toBe(1);
      expect(await store.job(job).retryDead()).toBe(0);
      expect(await store.job(job).deadLetters()).toEqual([]);
      expect(
        await store.job(job).claim({ owner: B, leaseMs: LEASE }),
      ).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 1, range: { ids: [7, 8] } },
      });
    });

    it('retries one dead letter by its run and first id; a letter already retried answers 0 and retries no other', async () => {
      await store.job(job).start({ runId: 'r' });
      const kill = async (ids: number[]) => {
        const lease = await leaseFresh(A, ids);
        expect(
          await store.job(job).fail({
            owner: A,
            token: lease.token,
            error: {
              message: `poison ${ids[0]}`,
              stack: `Error: poison ${ids[0]}\n    at handle`,
            },
            dead: true,
            retryInMs: 0,
          }),
        ).toBe('dead');
      };
      await kill([1, 2]);
      await kill([3, 4]);
      await kill([5, 6]);
      const letters = await store.job(job).deadLetters();
      expect(letters.map((d) => d.range.ids)).toEqual([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      expect(letters[1].error.stack).toBe('Error: poison 3\n    at handle');
      // Not in the list: another run, another first id (an id inside a range does not name it).
      for (const only of [
        { runId: 'other', firstId: 3 },
        { runId: 'r', firstId: 4 },
        { runId: 'r', firstId: 7 },
      ])
        expect(await store.job(job).retryDead({ only })).toBe(0);
      // Two operators naming the same letter at once: one retries it, the other gets 0.
      const both = await Promise.all([
        store.job(job).retryDead({ only: { runId: 'r', firstId: 3 } }),
        store.job(job).retryDead({ only: { runId: 'r', firstId: '3' } }),
      ]);
      expect(both.sort()).toEqual([0, 1]);
      expect(
        await store.job(job).retryDead({ only: { runId: 'r', firstId: 3 } }),
      ).toBe(0);
      expect(
        (await store.job(job).deadLetters()).map((d) => d.range.ids),
      ).toEqual([
        [1, 2],
        [5, 6],
      ]);
      expect((await store.job(job).state()).dead).toBe(2);
      expect(
        await store.job(job).claim({ owner: B, leaseMs: LEASE }),
      ).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 1, range: { ids: [3, 4] } },
      });
      // Without `only`, every letter left.
      expect(await store.job(job).retryDead()).toBe(2);
      expect(await store.job(job).deadLetters()).toEqual([]);
    });

    it('shares maxRangesPerSecond permits per second between hosts', async () => {
      await store.job(job).start({ runId: 'r' });
      const first = await store
        .job(job)
        .takePermits({ wanted: 4, perSecond: 6 });
      const second = await store
        .job(job)
        .takePermits({ wanted: 4, perSecond: 6 });
      if (second.granted === 2) {
        expect(first).toEqual({ granted: 4, waitMs: 0 });
        const third = await store
          .job(job)
          .takePermits({ wanted: 4, perSecond: 6 });
        // Either the same second is used up, or a new second began meanwhile.
        if (third.granted === 0) expect(third.waitMs).toBeGreaterThan(0);
        expect(third.waitMs).toBeLessThanOrEqual(1000);
      } else {
        // The second rolled over between the two calls.
        expect(second.granted).toBe(4);
      }
    });

    it('pauses (claims wait), resumes, and cancels a run for every host', async () => {
      await store.job(job).start({ runId: 'r' });
      expect(await store.job(job).control({ action: 'pause' })).toBe('r');
      expect((await store.job(job).state()).control).toBe('pause');
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE }),
      ).toMatchObject({ type: 'wait' });
      await store.job(job).control({ action: 'resume' });
      expect(await store.job(job).claim({ owner: A, leaseMs: LEASE })).toEqual({
        type: 'load',
        cursor: null,
      });
      const lease = await leaseFresh(A, [1]);
      expect(await store.job(job).control({ action: 'cancel' })).toBe('r');
      expect((await store.job(job).state()).state).toBe('stopped');
      expect(await store.job(job).claim({ owner: B, leaseMs: LEASE })).toEqual({
        type: 'cancelled',
      });
      expect(await store.job(job).control({ action: 'pause' })).toBeNull();
      await store.job(job).release({ owner: A, tokens: [lease.token] });
      expect(await store.job(job).start({ runId: 'r2' })).toEqual({
        runId: 'r2',
        joined: false,
      });
      expect(
        await store.job(job).claim({ owner: B, leaseMs: LEASE }),
      ).toMatchObject({
        type: 'lease',
        reason: 'released',
        lease: { range: { ids: [1] } },
      });
    });

    it('says how the run before the active one ended: its id, its end and its error', async () => {
      await store.job(job).start({ runId: 'r1' });
      expect((await store.job(job).state()).previous).toBeUndefined();
      await store.job(job).control({ action: 'cancel' });
      await store.job(job).start({ runId: 'r2' });
      expect((await store.job(job).state()).previous).toEqual({
        runId: 'r1',
        state: 'stopped',
      });
      await store
        .job(job)
        .endRun({ runId: 'r2', state: 'failed', error: 'the loader broke' });
      await store.job(job).start({ runId: 'r3' });
      expect(await store.job(job).state()).toMatchObject({
        runId: 'r3',
        previous: { runId: 'r2', state: 'failed', error: 'the loader broke' },
      });
      await store.job(job).endRun({ runId: 'r3', state: 'completed' });
      await store.job(job).start({ runId: 'r4', from: null });
      expect((await store.job(job).state()).previous).toEqual({
        runId: 'r3',
        state: 'completed',
      });
    });

    it('resets the cursor, refused while a live lease exists', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [1, 2]);
      await expect(store.job(job).reset()).rejects.toThrow(
        /^run r is active \(a host holds a lease of it, or took part in it within leaseMs and has not stopped\); cancel it or wait for it before resetting the job$/,
      );
      await expect(store.job(job).reset()).rejects.toBeInstanceOf(
        RunRefusedError,
      );
      await expect(store.job(job).reset()).rejects.toMatchObject({ job });
      await store.job(job).complete({ owner: A, tokens: [lease.token] });
      await store.job(job).leave?.({ owner: A });
      await store.job(job).reset();
      expect(await store.job(job).state()).toMatchObject({
        cursor: null,
        leased: 0,
        retrying: 0,
      });
    });

    it('counts a run waiting out a retry backoff as active: reset and from are refused until its hosts left or went quiet', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [1, 2]);
      expect(
        await store.job(job).fail({
          owner: A,
          token: lease.token,
          error: { message: 'x' },
          dead: false,
          retryInMs: 60_000,
        }),
      ).toBe('retry');
      // No live lease now; host A waits for the retry (its claims say wait) and beats.
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE }),
      ).toMatchObject({ type: 'load' });
      expect(
        await store
          .job(job)
          .heartbeat({ owner: A, tokens: [], leaseMs: LEASE }),
      ).toEqual([]);
      // Views of the job say it is running, though no lease is held now.
      expect(await store.job(job).state()).toMatchObject({
        leased: 0,
        active: true,
      });
      await expect(store.job(job).reset()).rejects.toThrow(/^run r is active/);
      await expect(
        store.job(job).start({ runId: 'r2', from: null }),
      ).rejects.toThrow(/^run r is active/);
      await store.job(job).leave!({ owner: A });
      expect(await store.job(job).state()).toMatchObject({
        state: 'running',
        active: false,
      });
      await store.job(job).reset();
      expect(await store.job(job).state()).toMatchObject({
        state: 'idle',
        cursor: null,
        retrying: 0,
        counters: { ids: 0, completed: 0, retried: 0 },
        startedAt: null,
      });
      // A host that went quiet (no leave: it crashed) stops counting once its lease time passed.
      await store.job(job).start({ runId: 'r3' });
      expect(
        await store.job(job).claim({ owner: B, leaseMs: 50 }),
      ).toMatchObject({ type: 'load' });
      await expect(store.job(job).reset()).rejects.toThrow(/^run r3 is active/);
      await sleep(80);
      await store.job(job).reset();
    });

    it('answers a claim or a commit that arrives twice (a client resending it) the same, leasing nothing more', async () => {
      await store.job(job).start({ runId: 'r' });
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE, request: '7' }),
      ).toEqual({
        type: 'load',
        cursor: null,
      });
      const first = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1, 2], null), range([3], 2)],
        leaseMs: LEASE,
        request: '8',
      });
      const again = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1, 2], null), range([3], 2)],
        leaseMs: LEASE,
        request: '8',
      });
      expect(first.type).toBe('leased');
      expect(again).toEqual(first);
      expect((await store.job(job).state()).leased).toBe(2);
      // Another request with the same content is a new commit: refused, the cursor moved.
      expect(
        await store.job(job).commit({
          owner: A,
          expected: null,
          ranges: [range([1, 2], null)],
          leaseMs: LEASE,
          request: '9',
        }),
      ).toEqual({ type: 'conflict', cursor: 3 });
      const leases = (first as { leases: { token: number }[] }).leases;
      expect(
        await store.job(job).fail({
          owner: A,
          token: leases[0].token,
          error: { message: 'x' },
          dead: false,
          retryInMs: 0,
        }),
      ).toBe('retry');
      const claim = await store
        .job(job)
        .claim({ owner: A, leaseMs: LEASE, request: '10' });
      expect(claim).toMatchObject({
        type: 'lease',
        reason: 'retry',
        lease: { attempt: 2, owner: A, range: { ids: [1, 2] } },
      });
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE, request: '10' }),
      ).toEqual(claim);
      expect((await store.job(job).state()).leased).toBe(2);
      // Once the lease is not the owner's any more, the same request claims afresh.
      await store.job(job).release({
        owner: A,
        tokens: [(claim as { lease: { token: number } }).lease.token],
      });
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE, request: '10' }),
      ).toMatchObject({
        type: 'lease',
        reason: 'released',
        lease: { attempt: 2 },
      });
      // Requests are per owner: B's request 8 is not A's.
      expect(
        await store.job(job).commit({
          owner: B,
          expected: 3,
          ranges: [range([4], 3)],
          leaseMs: LEASE,
          request: '8',
        }),
      ).toMatchObject({ type: 'leased', leases: [{ range: { ids: [4] } }] });
    });

    it('answers the oldest of as many claims and commits as a host can have in flight the same when it arrives again', async () => {
      await store.job(job).start({ runId: 'r' });
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE, request: '1' }),
      ).toEqual({
        type: 'load',
        cursor: null,
      });
      const first = await store.job(job).commit({
        owner: A,
        expected: null,
        ranges: [range([1], null)],
        leaseMs: LEASE,
        request: '2',
      });
      for (let i = 2; i < REQUESTS_IN_FLIGHT; i++)
        expect(
          (
            await store.job(job).commit({
              owner: A,
              expected: i - 1,
              ranges: [range([i], i - 1)],
              leaseMs: LEASE,
              request: String(i + 1),
            })
          ).type,
        ).toBe('leased');
      expect(
        await store.job(job).commit({
          owner: A,
          expected: null,
          ranges: [range([1], null)],
          leaseMs: LEASE,
          request: '2',
        }),
      ).toEqual(first);
      expect((await store.job(job).state()).leased).toBe(
        REQUESTS_IN_FLIGHT - 1,
      );
    });

    it('keeps the total of the current run', async () => {
      await store.job(job).start({ runId: 'r' });
      await store.job(job).setTotal({ runId: 'r', total: 1234 });
      await store.job(job).setTotal({ runId: 'other', total: 5 });
      expect((await store.job(job).state()).total).toBe(1234);
      await store.job(job).endRun({ runId: 'r', state: 'completed' });
      await store.job(job).start({ runId: 'r2' });
      expect((await store.job(job).state()).total).toBeUndefined();
    });

    it('releases leases to be handed out again at the same attempt', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [1, 2]);
      await store.job(job).release({ owner: A, tokens: [lease.token] });
      expect(
        await store.job(job).complete({ owner: A, tokens: [lease.token] }),
      ).toEqual([false]);
      expect(
        await store.job(job).claim({ owner: B, leaseMs: LEASE }),
      ).toMatchObject({
        type: 'lease',
        reason: 'released',
        lease: { attempt: 1, owner: B, range: { ids: [1, 2] } },
      });
    });

    it('ends the run only when the loader is exhausted and nothing is leased or waiting', async () => {
      await store.job(job).start({ runId: 'r' });
      const lease = await leaseFresh(A, [1]);
      expect(
        await store
          .job(job)
          .commit({ owner: A, expected: 1, ranges: [], leaseMs: LEASE }),
      ).toEqual({
        type: 'exhausted',
      });
      expect(
        await store.job(job).claim({ owner: B, leaseMs: LEASE }),
      ).toMatchObject({ type: 'wait' });
      await store.job(job).complete({ owner: A, tokens: [lease.token] });
      expect(await store.job(job).claim({ owner: B, leaseMs: LEASE })).toEqual({
        type: 'done',
      });
      await store.job(job).endRun({ runId: 'r', state: 'completed' });
      expect((await store.job(job).state()).state).toBe('completed');
    });

    it('keeps the cursor for the next run, and starts over with from: null', async () => {
      await store.job(job).start({ runId: 'r1' });
      const lease = await leaseFresh(A, [1, 2]);
      await store.job(job).complete({ owner: A, tokens: [lease.token] });
      await store
        .job(job)
        .commit({ owner: A, expected: 2, ranges: [], leaseMs: LEASE });
      await store.job(job).endRun({ runId: 'r1', state: 'completed' });
      expect(await store.job(job).start({ runId: 'r2' })).toEqual({
        runId: 'r2',
        joined: false,
      });
      expect(await store.job(job).claim({ owner: A, leaseMs: LEASE })).toEqual({
        type: 'load',
        cursor: 2,
      });
      expect((await store.job(job).state()).counters.ids).toBe(0);
      await store.job(job).endRun({ runId: 'r2', state: 'completed' });
      await store.job(job).start({ runId: 'r3', from: null });
      expect(await store.job(job).claim({ owner: A, leaseMs: LEASE })).toEqual({
        type: 'load',
        cursor: null,
      });
    });

    it('refuses to move the cursor while a live lease of the active run exists', async () => {
      await store.job(job).start({ runId: 'r' });
      await leaseFresh(A, [1]);
      // A plain Error with the store's words, not a raw script error.
      await expect(
        store.job(job).start({ runId: 'r2', from: null }),
      ).rejects.toThrow(
        /^run r is active \(a host holds a lease of it, or took part in it within leaseMs and has not stopped\); wait for it or stop it before moving the cursor$/,
      );
    });

    it('never lets another app (another loader and handler) continue or join a job, unless it takes it over with from', async () => {
      const appA = 'UsersBackfill.next + UsersBackfill.handle';
      const appB = 'Reindex.next + Reindex.handle';
      await store.job(job).start({ runId: 'r1', declaredBy: appA });
      await leaseFresh(A, [1, 2]);
      const refused = new RegExp(
        `^Job "${job}" in this store belongs to another app, which declares it as UsersBackfill.next \\+ UsersBackfill.handle; this app declares it as Reindex.next \\+ Reindex.handle\\. Two apps sharing one Redis need different storageKey values`,
      );
      // Joining the active run, or starting the next one from A's cursor: both refused, naming both declarations.
      await expect(
        store.job(job).start({ runId: 'r2', declaredBy: appB }),
      ).rejects.toThrow(refused);
      await store.job(job).endRun({ runId: 'r1', state: 'completed' });
      await expect(
        store.job(job).start({ runId: 'r2', declaredBy: appB }),
      ).rejects.toThrow(refused);
      expect((await store.job(job).state()).runId).toBe('r1');
      // The same app joins and continues with no configuration; a store user that names no declaration is not checked.
      expect(
        await store.job(job).start({ runId: 'r3', declaredBy: appA }),
      ).toEqual({
        runId: 'r3',
        joined: false,
      });
      await store.job(job).endRun({ runId: 'r3', state: 'completed' });
      expect(await store.job(job).start({ runId: 'r4' })).toEqual({
        runId: 'r4',
        joined: false,
      });
      await store.job(job).endRun({ runId: 'r4', state: 'completed' });
      // `from` takes the job over (a renamed class), and from then on it is B's.
      expect(
        await store
          .job(job)
          .start({ runId: 'r5', from: null, declaredBy: appB }),
      ).toEqual({
        runId: 'r5',
        joined: false,
      });
      await store.job(job).endRun({ runId: 'r5', state: 'completed' });
      await expect(
        store.job(job).start({ runId: 'r6', declaredBy: appA }),
      ).rejects.toThrow(
        /belongs to another app, which declares it as Reindex.next/,
      );
    });

    it('issues fencing tokens above store time in ms x 1000, so they go up across processes and failovers', async () => {
      await store.job(job).start({ runId: 'r' });
      const before = (await store.job(job).state()).now;
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
        status: () => s.job(job).state({ declaredBy: by }),
        pause: () => s.job(job).control({ action: 'pause', declaredBy: by }),
        resume: () => s.job(job).control({ action: 'resume', declaredBy: by }),
        cancel: () => s.job(job).control({ action: 'cancel', declaredBy: by }),
        reset: () => s.job(job).reset({ declaredBy: by }),
        retryDead: () => s.job(job).retryDead({ declaredBy: by }),
        deadLetters: () =>
          s.job(job).deadLetters({ offset: 0, limit: 10, declaredBy: by }),
        history: () => s.job(job).history!({ limit: 10, declaredBy: by }),
        leasesByHost: () => s.job(job).leasesByOwner!({ declaredBy: by }),
      });

      it('refuses every call of another app on the job, changing nothing, whether a run is active or not', async () => {
        await store.job(job).start({ runId: 'r1', declaredBy: appA });
        const dead = await leaseFresh(A, [1, 2]);
        await store.job(job).fail({
          owner: A,
          token: dead.token,
          error: { message: 'poison' },
          dead: true,
          retryInMs: 0,
        });
        await leaseFresh(A, [3]);
        const before = await store.job(job).state();
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
        const after = await store.job(job).state();
        expect({ ...after, now: 0 }).toEqual({ ...before, now: 0 });
        expect(await store.job(job).deadLetters()).toHaveLength(1);
        await store.job(job).control({ action: 'cancel', declaredBy: appA });
        await refuseAll();
        expect(await store.job(job).state()).toMatchObject({
          state: 'stopped',
          cursor: 3,
          dead: 1,
        });
      });

      it('allows the app that declares the job, and a caller that names no app (the CLI)', async () => {
        await store.job(job).start({ runId: 'r1', declaredBy: appA });
        const dead = await leaseFresh(A, [1, 2]);
        await store.job(job).fail({
          owner: A,
          token: dead.token,
          error: { message: 'poison' },
          dead: true,
          retryInMs: 0,
        });
        for (const by of [appA, undefined]) {
          const call = calls(store, by as string);
          expect(await call.status()).toMatchObject({ runId: 'r1', dead: 1 });
          expect(await call.pause()).toBe('r1');
          expect((await store.job(job).state()).control).toBe('pause');
          expect(await call.resume()).toBe('r1');
          expect(await call.deadLetters()).toHaveLength(1);
          expect(await call.history()).toEqual([]);
          expect(await call.leasesByHost()).toEqual({});
        }
        expect(await store.job(job).retryDead({ declaredBy: appA })).toBe(1);
        expect(
          await store.job(job).control({ action: 'cancel', declaredBy: appA }),
        ).toBe('r1');
        await store.job(job).reset({ declaredBy: appA });
        expect(await store.job(job).state()).toMatchObject({
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
        await store.job(job).start({ runId: 'r1' });
        expect(await call.pause()).toBe('r1');
        expect(await call.cancel()).toBe('r1');
        await store.job(job).start({ runId: 'r2', declaredBy: appA });
        await expect(call.status()).rejects.toThrow(otherApp('status'));
      });
    });

    describe('holds (the health option)', () => {
      const holdOf = (j: ReturnType<CoordinationStore['job']>) => {
        if (!j.hold || !j.healthTurn)
          throw new Error(`${name} has no holds or health turns`);
        return { hold: j.hold.bind(j), healthTurn: j.healthTurn.bind(j) };
      };

      it('holds a running run for every host: no claim hands out a range until it ends; leases held go on', async () => {
        await store.job(job).start({ runId: 'r1' });
        const held = await leaseFresh(A, [1, 2]);
        const before = (await store.job(job).state()).now;
        await holdOf(store.job(job)).hold({
          runId: 'r1',
          reason: 'replica lag 7.2 s > 5000',
          indicator: 'postgresHealth',
          holdMs: 400,
        });
        const claim = await store.job(job).claim({ owner: B, leaseMs: LEASE });
        expect(claim.type).toBe('wait');
        expect(claim.type === 'wait' && claim.retryInMs).toBeLessThanOrEqual(
          400,
        );
        const s = await store.job(job).state();
        expect(s.hold).toEqual({
          reason: 'replica lag 7.2 s > 5000',
          indicator: 'postgresHealth',
          since: expect.any(Number),
          until: (s.hold as { since: number }).since + 400,
        });
        expect(s.hold?.since).toBeGreaterThanOrEqual(before);
        // The lease held before the hold is renewed and completes.
        expect(
          await store
            .job(job)
            .heartbeat({ owner: A, tokens: [held.token], leaseMs: LEASE }),
        ).toEqual([]);
        expect(
          await store.job(job).complete({ owner: A, tokens: [held.token] }),
        ).toEqual([true]);
        await sleep(450);
        expect(
          (await store.job(job).claim({ owner: B, leaseMs: LEASE })).type,
        ).toBe('load');
        const after = await store.job(job).state();
        expect(after.hold).toBeUndefined();
        expect(after.heldMs).toBe(400);
      });

      it('hands out nothing during a hold: not an expired lease, not a due retry', async () => {
        await store.job(job).start({ runId: 'r1' });
        const lease = await leaseFresh(A, [1]);
        await store.job(job).fail({
          owner: A,
          token: lease.token,
          error: { message: 'once' },
          dead: false,
          retryInMs: 0,
        });
        await holdOf(store.job(job)).hold({
          runId: 'r1',
          reason: 'vacuum',
          indicator: 'db',
          holdMs: 300,
        });
        expect(
          (await store.job(job).claim({ owner: A, leaseMs: LEASE })).type,
        ).toBe('wait');
        await sleep(350);
        const claim = await store.job(job).claim({ owner: A, leaseMs: LEASE });
        expect(claim.type === 'lease' && claim.reason).toBe('retry');
      });

      it('refuses to lease loaded ranges during a hold (a conflict, the cursor unchanged), but marks loading exhausted', async () => {
        await store.job(job).start({ runId: 'r1' });
        const claim = await store.job(job).claim({ owner: A, leaseMs: LEASE });
        expect(claim.type).toBe('load');
        await holdOf(store.job(job)).hold({
          runId: 'r1',
          reason: 'lag',
          indicator: 'db',
          holdMs: 300,
        });
        expect(
          await store.job(job).commit({
            owner: A,
            expected: null,
            ranges: [range([1, 2], null)],
            leaseMs: LEASE,
          }),
        ).toEqual({ type: 'conflict', cursor: null });
        expect((await store.job(job).state()).leased).toBe(0);
        expect(
          await store
            .job(job)
            .commit({ owner: A, expected: null, ranges: [], leaseMs: LEASE }),
        ).toEqual({ type: 'exhausted' });
        expect((await store.job(job).state()).exhausted).toBe(true);
      });

      it('extends a hold in place from its first start, and counts held time across holds', async () => {
        await store.job(job).start({ runId: 'r1' });
        const j = holdOf(store.job(job));
        await j.hold({
          runId: 'r1',
          reason: 'first',
          indicator: 'a',
          holdMs: 200,
        });
        const first = (await store.job(job).state()).hold as {
          since: number;
          until: number;
        };
        await j.hold({
          runId: 'r1',
          reason: 'second',
          indicator: 'b',
          holdMs: 300,
        });
        const extended = (await store.job(job).state()).hold;
        expect(extended).toMatchObject({
          reason: 'second',
          indicator: 'b',
          since: first.since,
        });
        expect(extended?.until).toBeGreaterThanOrEqual(first.since + 300);
        // A shorter hold never shortens the one in place.
        await j.hold({
          runId: 'r1',
          reason: 'third',
          indicator: 'c',
          holdMs: 1,
        });
        expect((await store.job(job).state()).hold?.until).toBe(
          extended?.until,
        );
        const span = (extended?.until as number) - first.since;
        await sleep(span + 50);
        expect((await store.job(job).state()).heldMs).toBe(span);
        await j.hold({
          runId: 'r1',
          reason: 'again',
          indicator: 'a',
          holdMs: 100,
        });
        await sleep(150);
        expect((await store.job(job).state()).heldMs).toBe(span + 100);
      });

      it('ignores a hold of another run or of an ended run; a new run starts with none', async () => {
        await store.job(job).start({ runId: 'r1' });
        const j = holdOf(store.job(job));
        await j.hold({
          runId: 'r0',
          reason: 'old',
          indicator: 'a',
          holdMs: 5000,
        });
        expect((await store.job(job).state()).hold).toBeUndefined();
        await j.hold({
          runId: 'r1',
          reason: 'now',
          indicator: 'a',
          holdMs: 5000,
        });
        await store.job(job).endRun({ runId: 'r1', state: 'completed' });
        await j.hold({
          runId: 'r1',
          reason: 'late',
          indicator: 'a',
          holdMs: 5000,
        });
        await store.job(job).start({ runId: 'r2' });
        const s = await store.job(job).state();
        expect(s.hold).toBeUndefined();
        expect(s.heldMs).toBe(0);
        expect(
          (await store.job(job).claim({ owner: A, leaseMs: LEASE })).type,
        ).toBe('load');
      });

      it('gives no one a health turn until a hold length after it ends (its host asks again as it ends)', async () => {
        await store.job(job).start({ runId: 'r1' });
        const j = holdOf(store.job(job));
        expect(await j.healthTurn({ runId: 'r1', intervalMs: 100 })).toBe(true);
        await j.hold({
          runId: 'r1',
          reason: 'lag',
          indicator: 'db',
          holdMs: 200,
        });
        await sleep(250);
        // Ended 50 ms ago: no turn for another host until 200 ms after its end.
        expect(await j.healthTurn({ runId: 'r1', intervalMs: 100 })).toBe(
          false,
        );
        await sleep(200);
        expect(await j.healthTurn({ runId: 'r1', intervalMs: 100 })).toBe(true);
      });

      it('gives one health turn per interval, across hosts, and none to another run', async () => {
        await store.job(job).start({ runId: 'r1' });
        const j = holdOf(store.job(job));
        expect(await j.healthTurn({ runId: 'r1', intervalMs: 300 })).toBe(true);
        expect(await j.healthTurn({ runId: 'r1', intervalMs: 300 })).toBe(
          false,
        );
        expect(await j.healthTurn({ runId: 'r0', intervalMs: 300 })).toBe(
          false,
        );
        await sleep(350);
        const turns = await Promise.all([
          j.healthTurn({ runId: 'r1', intervalMs: 300 }),
          j.healthTurn({ runId: 'r1', intervalMs: 300 }),
          j.healthTurn({ runId: 'r1', intervalMs: 300 }),
        ]);
        expect(turns.filter(Boolean)).toHaveLength(1);
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
          await store.job(job).start({ runId: 'r1', declaredBy: appA });
          const dead = await leaseFresh(A, [1, 2]);
          await store.job(job).fail({
            owner: A,
            token: dead.token,
            error: { message: 'poison' },
            dead: true,
            retryInMs: 0,
          });
          const done = await leaseFresh(A, [3]);
          await store.job(job).complete({ owner: A, tokens: [done.token] });
          const held = await leaseFresh(A, [4]);
          return [dead.token, done.token, held.token];
        };

        it('resets as its first call without losing dead letters, history, the declaration or the tokens', async () => {
          const tokens = await stored();
          await store.job(job).release({ owner: A, tokens: [tokens[2]] });
          await store.job(job).endRun({ runId: 'r1', state: 'completed' });
          await store.job(job).leave?.({ owner: A });
          const record = { runId: 'r1', job, status: 'completed' } as const;
          await store.job(job).recordRun?.({
            record: {
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
                heldMs: 0,
                host: { ids: 1, ranges: 1 },
              },
              deadLetters: 1,
            },
            keep: 10,
          });
          const next = fresh();
          await next.job(job).reset({ declaredBy: appA });
          expect(await next.job(job).deadLetters()).toHaveLength(1);
          expect(await next.job(job).history?.({ limit: 10 })).toEqual([
            expect.objectContaining(record),
          ]);
          expect(await next.job(job).state()).toMatchObject({
            state: 'idle',
            cursor: null,
            dead: 1,
          });
          await expect(
            next.job(job).state({ declaredBy: appB }),
          ).rejects.toThrow(
            /belongs to another app, which declares it as UsersBackfill\.next/,
          );
          await next.job(job).start({ runId: 'r2', declaredBy: appA });
          const again = await next.job(job).claim({ owner: A, leaseMs: LEASE });
          expect(again.type).toBe('load');
          const after = await next.job(job).commit({
            owner: A,
            expected: null,
            ranges: [range([1], null)],
            leaseMs: LEASE,
          });
          if (after.type !== 'leased') throw new Error(after.type);
          expect(after.leases[0].token).toBeGreaterThan(Math.max(...tokens));
        });

        it('pauses and cancels the stored active run as its first call', async () => {
          await stored();
          const second = fresh();
          expect(
            await second
              .job(job)
              .control({ action: 'pause', declaredBy: appA }),
          ).toBe('r1');
          expect(await second.job(job).state()).toMatchObject({
            runId: 'r1',
            state: 'running',
            control: 'pause',
            cursor: 4,
            leased: 1,
            dead: 1,
          });
          const third = fresh();
          expect(await third.job(job).control({ action: 'cancel' })).toBe('r1');
          expect(await third.job(job).state()).toMatchObject({
            runId: 'r1',
            state: 'stopped',
            cursor: 4,
            leased: 1,
            dead: 1,
            counters: { ids: 1, completed: 1, dead: 1 },
          });
          expect(await fresh().job(job).deadLetters()).toHaveLength(1);
        });

        it('sees the stored hold and health turn as its first calls: the claim waits, the turn is taken', async () => {
          const [, , leased] = await stored();
          const first = store.job(job);
          if (!first.hold || !first.healthTurn)
            throw new Error(`${name} has no holds or health turns`);
          // The turn first (the host that asks), then the hold it puts.
          expect(
            await first.healthTurn({ runId: 'r1', intervalMs: 60_000 }),
          ).toBe(true);
          await first.hold({
            runId: 'r1',
            reason: 'replica lag 7.2 s > 5000',
            indicator: 'postgresHealth',
            holdMs: 60_000,
          });
          const held = (await first.state()).hold;
          expect(held).toMatchObject({ indicator: 'postgresHealth' });

          const seen = await fresh().job(job).state();
          expect(seen).toMatchObject({
            runId: 'r1',
            state: 'running',
            hold: held,
          });
          expect(seen.heldMs).toBe(seen.now - (held?.since as number));
          expect(
            await fresh().job(job).claim({ owner: B, leaseMs: LEASE }),
          ).toEqual({ type: 'wait', retryInMs: 1000 });
          expect(
            await fresh()
              .job(job)
              .healthTurn?.({ runId: 'r1', intervalMs: 60_000 }),
          ).toBe(false);
          // The lease held before the hold goes on under a new instance.
          expect(
            await fresh()
              .job(job)
              .heartbeat({ owner: A, tokens: [leased], leaseMs: LEASE }),
          ).toEqual([]);
        });

        it("refuses another app's first call, and keeps the job the stored app's", async () => {
          await stored();
          for (const first of [
            (s: CoordinationStore) =>
              s.job(job).control({ action: 'cancel', declaredBy: appB }),
            (s: CoordinationStore) => s.job(job).reset({ declaredBy: appB }),
            (s: CoordinationStore) =>
              s.job(job).retryDead({ declaredBy: appB }),
          ]) {
            await expect(first(fresh())).rejects.toThrow(
              /belongs to another app, which declares it as UsersBackfill\.next/,
            );
          }
          expect(
            await fresh().job(job).state({ declaredBy: appA }),
          ).toMatchObject({
            runId: 'r1',
            state: 'running',
            dead: 1,
            leased: 1,
          });
        });
      },
    );

    it('tells other hosts when the run failed', async () => {
      await store.job(job).start({ runId: 'r' });
      await store
        .job(job)
        .endRun({ runId: 'r', state: 'failed', error: 'bad loader output' });
      expect(await store.job(job).claim({ owner: B, leaseMs: LEASE })).toEqual({
        type: 'failed',
        error: 'bad loader output',
      });
    });

    it('hands ranges left over by a failed run to the next run', async () => {
      await store.job(job).start({ runId: 'r1' });
      const lease = await leaseFresh(A, [1, 2]);
      await store.job(job).release({ owner: A, tokens: [lease.token] });
      await store.job(job).endRun({ runId: 'r1', state: 'failed', error: 'x' });
      await store.job(job).start({ runId: 'r2' });
      expect(
        await store.job(job).claim({ owner: A, leaseMs: LEASE }),
      ).toMatchObject({
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
        const claim = await store
          .job(job)
          .claim({ owner, leaseMs: LEASE, loading });
        if (claim.type !== 'load' || claim.partition === undefined)
          throw new Error(
            `expected a partition to load, got ${JSON.stringify(claim)}`,
          );
        return claim as { cursor: number | null; partition: number };
      };

      it('stores the partitions with the run, each with its own cursor, and gives each host a different one', async () => {
        await store.job(job).start({ runId: 'r', partitions: BOUNDS });
        const a = await load(A);
        const b = await load(B);
        expect(a.partition).not.toBe(b.partition);
        expect(a.cursor).toBe(BOUNDS[a.partition].after);
        // A host loading two partitions at once names the one it loads.
        const a2 = await load(A, [a.partition]);
        expect([a.partition, b.partition]).not.toContain(a2.partition);
        let s = await store.job(job).state();
        expect(s.partitions).toHaveLength(3);
        expect(s.partitions?.map((p) => p.cursor)).toEqual([null, 100, 200]);
        expect(s.partitions?.[a.partition].loader?.owner).toBe(A);
        // Every partition is being loaded: a third host takes one over from A, which holds more than its share.
        const c = await load('host-c');
        expect([a.partition, a2.partition]).toContain(c.partition);
        s = await store.job(job).state();
        expect(s.partitions?.map((p) => p.loader?.owner).sort()).toEqual(
          [A, B, 'host-c'].sort(),
        );
        // A fourth finds nothing it may take: every host holds its share.
        expect(
          await store.job(job).claim({ owner: 'host-d', leaseMs: LEASE }),
        ).toMatchObject({
          type: 'wait',
        });
      });

      it('commits per partition: compare-and-set on that partition cursor only, and counts its ids', async () => {
        await store.job(job).start({ runId: 'r', partitions: BOUNDS });
        expect((await load(A)).partition).toBe(0);
        expect((await load(B)).partition).toBe(1);
        // Partition 1 starts after 100: a commit expecting its cursor leases.
        const r = await store.job(job).commit({
          owner: B,
          expected: 100,
          ranges: [range([101, 102], 100)],
          leaseMs: LEASE,
          partition: 1,
        });
        expect(r).toMatchObject({
          type: 'leased',
          leases: [{ range: { ids: [101, 102] } }],
        });
        // A stale commit on partition 1 conflicts with that partition's cursor.
        expect(
          await store.job(job).commit({
            owner: B,
            expected: 100,
            ranges: [range([101], 100)],
            leaseMs: LEASE,
            partition: 1,
          }),
        ).toEqual({ type: 'conflict', cursor: 102 });
        // Partition 0's cursor did not move.
        expect(
          await store.job(job).commit({
            owner: A,
            expected: null,
            ranges: [range([1], null)],
            leaseMs: LEASE,
            partition: 0,
          }),
        ).toMatchObject({ type: 'leased' });
        const s = await store.job(job).state();
        expect(s.partitions?.map((p) => [p.cursor, p.ids])).toEqual([
          [1, 1],
          [102, 2],
          [200, 0],
        ]);
      });

      it('ends loading once every partition is exhausted, and the run once nothing is leased', async () => {
        await store.job(job).start({ runId: 'r', partitions: BOUNDS });
        const leases: number[] = [];
        for (let i = 0; i < 3; i++) {
          const c = await load(A, []);
          const ids = [Number(c.cursor ?? 0) + 1];
          const r = await store.job(job).commit({
            owner: A,
            expected: c.cursor,
            ranges: [range(ids, c.cursor)],
            leaseMs: LEASE,
            partition: c.partition,
          });
          if (r.type === 'leased') leases.push(...r.leases.map((l) => l.token));
          expect(
            await store.job(job).commit({
              owner: A,
              expected: ids[0],
              ranges: [],
              leaseMs: LEASE,
              partition: c.partition,
            }),
          ).toEqual({ type: 'exhausted' });
        }
        expect((await store.job(job).state()).exhausted).toBe(true);
        expect(
          await store.job(job).claim({ owner: A, leaseMs: LEASE }),
        ).toMatchObject({
          type: 'wait',
        });
        await store.job(job).complete({ owner: A, tokens: leases });
        expect(
          await store.job(job).claim({ owner: A, leaseMs: LEASE }),
        ).toEqual({ type: 'done' });
      });

      it('spreads partitions over hosts: one with less than its share takes one over from a host with more, whose next commit there is refused', async () => {
        await store
          .job(job)
          .start({ runId: 'r', partitions: BOUNDS.slice(0, 2) });
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
          await store.job(job).commit({
            owner: A,
            expected: lost.cursor,
            ranges: [range([Number(lost.cursor ?? 0) + 1], lost.cursor)],
            leaseMs: LEASE,
            partition: lost.partition,
          }),
        ).toEqual({ type: 'conflict', cursor: lost.cursor });
        expect(
          await store.job(job).commit({
            owner: B,
            expected: b.cursor,
            ranges: [range([Number(b.cursor ?? 0) + 1], b.cursor)],
            leaseMs: LEASE,
            partition: b.partition,
          }),
        ).toMatchObject({ type: 'leased' });
        // A holds its share (one of two): it takes no other, and B takes nothing more from it.
        expect(
          await store
            .job(job)
            .claim({ owner: A, leaseMs: LEASE, loading: [kept.partition] }),
        ).toMatchObject({ type: 'wait' });
        expect(
          await store
            .job(job)
            .claim({ owner: B, leaseMs: LEASE, loading: [b.partition] }),
        ).toMatchObject({ type: 'wait' });
        expect(
          await store.job(job).commit({
            owner: A,
            expected: kept.cursor,
            ranges: [range([Number(kept.cursor ?? 0) + 1], kept.cursor)],
            leaseMs: LEASE,
            partition: kept.partition,
          }),
        ).toMatchObject({ type: 'leased' });
      });

      it('frees a partition whose host went quiet (its lease time passed) or left', async () => {
        await store
          .job(job)
          .start({ runId: 'r', partitions: BOUNDS.slice(0, 1) });
        expect(
          await store.job(job).claim({ owner: A, leaseMs: 50, loading: [] }),
        ).toMatchObject({
          partition: 0,
        });
        expect(
          await store.job(job).claim({ owner: B, leaseMs: LEASE }),
        ).toMatchObject({
          type: 'wait',
        });
        await sleep(80);
        expect(
          await store.job(job).claim({ owner: B, leaseMs: LEASE }),
        ).toMatchObject({
          type: 'load',
          partition: 0,
        });
        await store.job(job).leave?.({ owner: B });
        expect(
          await store.job(job).claim({ owner: A, leaseMs: LEASE }),
        ).toMatchObject({
          type: 'load',
          partition: 0,
        });
        // A heartbeat keeps it the owner's.
        await sleep(20);
        await store
          .job(job)
          .heartbeat({ owner: A, tokens: [], leaseMs: LEASE });
        expect(
          await store.job(job).claim({ owner: B, leaseMs: LEASE }),
        ).toMatchObject({
          type: 'wait',
        });
      });

      it('keeps the partitions and their cursors for the next run, replaces them with from, forgets them on reset', async () => {
        await store.job(job).start({ runId: 'r1', partitions: BOUNDS });
        const c = await load(A);
        const r = await store.job(job).commit({
          owner: A,
          expected: c.cursor,
          ranges: [range([Number(c.cursor ?? 0) + 5], c.cursor)],
          leaseMs: LEASE,
          partition: c.partition,
        });
        if (r.type === 'leased')
          await store
            .job(job)
            .complete({ owner: A, tokens: r.leases.map((l) => l.token) });
        await store.job(job).endRun({ runId: 'r1', state: 'completed' });
        await store.job(job).leave?.({ owner: A });
        // The next run keeps them, whatever it passes; exhausted flags and counts start over.
        await store
          .job(job)
          .start({ runId: 'r2', partitions: [{ after: null, upTo: null }] });
        let s = await store.job(job).state();
        expect(s.partitions).toHaveLength(3);
        expect(s.partitions?.[c.partition]).toMatchObject({
          cursor: Number(c.cursor ?? 0) + 5,
          exhausted: false,
          ids: 0,
        });
        await store.job(job).endRun({ runId: 'r2', state: 'completed' });
        // from replaces them (none given: none kept).
        await store.job(job).start({
          runId: 'r3',
          from: 150,
          partitions: [{ after: 150, upTo: null }],
        });
        s = await store.job(job).state();
        expect(s.partitions).toEqual([
          { after: 150, upTo: null, cursor: 150, exhausted: false, ids: 0 },
        ]);
        await store.job(job).endRun({ runId: 'r3', state: 'completed' });
        await store.job(job).reset();
        expect((await store.job(job).state()).partitions).toBeUndefined();
        await store.job(job).start({ runId: 'r4' });
        expect(
          await store.job(job).claim({ owner: A, leaseMs: LEASE }),
        ).toEqual({
          type: 'load',
          cursor: null,
        });
      });

      it('stores a new plan only against the cursor it was planned from (compare-and-set), else changes nothing and says where the cursor is', async () => {
        await store.job(job).start({ runId: 'r1', from: 150 });
        await store.job(job).endRun({ runId: 'r1', state: 'completed' });
        const clipped = [{ after: 150, upTo: null }];
        // Planned from 150, but a reset moved the cursor back meanwhile.
        await store.job(job).reset();
        expect(
          await store
            .job(job)
            .start({ runId: 'r2', partitions: clipped, plannedFrom: 150 }),
        ).toEqual({ replanFrom: null });
        let s = await store.job(job).state();
        expect(s).toMatchObject({ state: 'idle', cursor: null });
        expect(s.partitions).toBeUndefined();
        // A job with partitions that passes none (it read stored ones, gone since) plans them again too.
        expect(
          await store.job(job).start({ runId: 'r2', plannedFrom: null }),
        ).toEqual({ replanFrom: null });
        expect((await store.job(job).state()).state).toBe('idle');
        // Planned from the cursor the job has: stored.
        expect(
          await store
            .job(job)
            .start({ runId: 'r2', partitions: BOUNDS, plannedFrom: null }),
        ).toEqual({ runId: 'r2', joined: false });
        s = await store.job(job).state();
        expect(s.partitions?.map((p) => p.cursor)).toEqual([null, 100, 200]);
        await store.job(job).endRun({ runId: 'r2', state: 'completed' });
        // Partitions stored: they are kept, whatever cursor the caller planned from.
        expect(
          await store
            .job(job)
            .start({ runId: 'r3', partitions: clipped, plannedFrom: 150 }),
        ).toEqual({ runId: 'r3', joined: false });
        expect((await store.job(job).state()).partitions).toHaveLength(3);
        await store.job(job).endRun({ runId: 'r3', state: 'completed' });
        // from sets the cursor the plan is clipped at in the same step: nothing to compare.
        expect(
          await store.job(job).start({
            runId: 'r4',
            from: 150,
            partitions: clipped,
            plannedFrom: 7,
          }),
        ).toEqual({ runId: 'r4', joined: false });
        expect((await store.job(job).state()).partitions).toEqual([
          { after: 150, upTo: null, cursor: 150, exhausted: false, ids: 0 },
        ]);
      });
    });
  });
}
