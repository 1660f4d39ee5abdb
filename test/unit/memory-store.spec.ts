import {
  type JobStore,
  KeyValueStore,
  MemoryStore,
  RunRefusedError,
} from '../../lib';
import { replaceCalls } from '../support/replace-calls';
import { storeContract } from '../contract/store.contract';

storeContract('MemoryStore', async () => ({
  store: new MemoryStore(),
  job: 'items',
}));

const map = new Map<string, string>();
storeContract(
  'KeyValueStore (seed-style { get, set })',
  async () => {
    map.clear();
    const storage = {
      get: (key: string) => map.get(key),
      set: (key: string, value: string) => map.set(key, value),
    };
    return {
      store: new KeyValueStore(storage, 'parallel-worker'),
      job: 'items',
      reopen: () => new KeyValueStore(storage, 'parallel-worker'),
    };
  },
  { reopens: true },
);

describe('KeyValueStore', () => {
  it('saves the whole job state under <storageKey>:<job>, so a new process resumes it', async () => {
    const kv = new Map<string, string>();
    const storage = {
      get: async (k: string) => kv.get(k),
      set: async (k: string, v: string) => void kv.set(k, v),
    };
    const first = new KeyValueStore(storage, 'pw');
    await first.job('users').start({ runId: 'r1' });
    const claim = await first.job('users').commit({
      owner: 'h1',
      expected: null,
      ranges: [{ ids: [1, 2], lastId: 2, prev: null }],
      leaseMs: 10_000,
    });
    expect(claim.type).toBe('leased');
    expect(JSON.parse(kv.get('pw:users') as string)).toMatchObject({
      cursor: 2,
      runId: 'r1',
    });

    const second = new KeyValueStore(storage, 'pw');
    expect(await second.job('users').start({ runId: 'r2' })).toEqual({
      runId: 'r1',
      joined: true,
    });
    expect((await second.job('users').state()).leased).toBe(1);
  });
});

describe('KeyValueStore with part of its saved state lost', () => {
  // One part at a time removed from the saved JSON, or of the wrong type: the store knows what it should hold.
  const parts: [string, unknown][] = [
    ['nextToken', undefined],
    ['dead', undefined],
    ['leases', undefined],
    ['pending', undefined],
    ['cursor', undefined],
    ['counters', undefined],
    ['nextToken', 'seven'],
    ['dead', {}],
  ];

  it.each(parts)(
    'fails the run "state lost" when %s is %p, refuses a run without from, and starts again from it',
    async (part, value) => {
      const kv = new Map<string, string>();
      const storage = {
        get: (k: string) => kv.get(k),
        set: (k: string, v: string) => void kv.set(k, v),
      };
      const first = new KeyValueStore(storage, 'pw');
      await first
        .job('users')
        .start({ runId: 'r1', declaredBy: 'A.load + A.handle' });
      await first.job('users').commit({
        owner: 'h1',
        expected: null,
        ranges: [{ ids: [1, 2], lastId: 2, prev: null }],
        leaseMs: 10_000,
      });
      const saved = JSON.parse(kv.get('pw:users') as string);
      if (value === undefined) delete saved[part];
      else saved[part] = value;
      kv.set('pw:users', JSON.stringify(saved));

      const second = new KeyValueStore(storage, 'pw');
      const claim = await second
        .job('users')
        .claim({ owner: 'h2', leaseMs: 10_000 });
      expect(claim).toMatchObject({ type: 'failed' });
      expect(claim.type === 'failed' && claim.error).toContain(
        `part of the coordination state of job "users" (run r1) was lost from the store (${part}`,
      );
      await expect(
        second
          .job('users')
          .start({ runId: 'r2', declaredBy: 'A.load + A.handle' }),
      ).rejects.toThrow(RunRefusedError);
      // A third process sees the loss too: it was saved.
      await expect(
        new KeyValueStore(storage, 'pw').job('users').start({ runId: 'r2' }),
      ).rejects.toThrow('was lost from the store');

      expect(
        await second
          .job('users')
          .start({ runId: 'r3', from: null, declaredBy: 'A.load + A.handle' }),
      ).toEqual({ runId: 'r3', joined: false });
      expect(await second.job('users').deadLetters()).toEqual([]);
      const next = await second
        .job('users')
        .claim({ owner: 'h2', leaseMs: 10_000 });
      expect(next).toMatchObject({ type: 'load', cursor: null });
      const leased = await second.job('users').commit({
        owner: 'h2',
        expected: null,
        ranges: [{ ids: [1, 2], lastId: 2, prev: null }],
        leaseMs: 10_000,
      });
      expect(leased.type === 'leased' && leased.leases[0].token).toEqual(
        expect.any(Number),
      );
      expect(
        leased.type === 'leased' &&
          Number.isSafeInteger(leased.leases[0].token),
      ).toBe(true);
    },
  );

  it('starts again after reset too', async () => {
    const kv = new Map<string, string>();
    const storage = {
      get: (k: string) => kv.get(k),
      set: (k: string, v: string) => void kv.set(k, v),
    };
    await new KeyValueStore(storage, 'pw').job('users').start({ runId: 'r1' });
    const saved = JSON.parse(kv.get('pw:users') as string);
    delete saved.dead;
    kv.set('pw:users', JSON.stringify(saved));

    const second = new KeyValueStore(storage, 'pw');
    await expect(second.job('users').start({ runId: 'r2' })).rejects.toThrow(
      RunRefusedError,
    );
    await second.job('users').reset();
    expect(await second.job('users').deadLetters()).toEqual([]);
    expect(await second.job('users').start({ runId: 'r3' })).toEqual({
      runId: 'r3',
      joined: false,
    });
  });
});

describe('KeyValueStore subclass', () => {
  it("loads the saved job before a subclass's own override of a call", async () => {
    const kv = new Map<string, string>();
    const storage = {
      get: (k: string) => kv.get(k),
      set: (k: string, v: string) => void kv.set(k, v),
    };
    await new KeyValueStore(storage, 'pw').job('users').start({ runId: 'r1' });
    class Counting extends KeyValueStore {
      seen: string[] = [];
      override job(name: string): JobStore {
        const job = super.job(name);
        return replaceCalls(job, {
          state: async (o) => {
            const s = await job.state(o);
            this.seen.push(String(s.runId));
            return s;
          },
        });
      }
    }
    const store = new Counting(storage, 'pw');
    expect((await store.job('users').state()).runId).toBe('r1');
    expect(store.seen).toEqual(['r1']);
  });
});

describe('MemoryStore time', () => {
  afterEach(() => jest.restoreAllMocks());

  it('keeps leases through a wall-clock step forward', async () => {
    const store = new MemoryStore();
    await store.job('items').start({ runId: 'r1' });
    await store.job('items').commit({
      owner: 'h1',
      expected: null,
      ranges: [{ ids: [1, 2], lastId: 2, prev: null }],
      leaseMs: 10_000,
    });
    const wall = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => wall + 3_600_000);
    // Another host's claim finds nothing expired: the lease is still h1's.
    expect(
      await store.job('items').claim({ owner: 'h2', leaseMs: 10_000 }),
    ).toEqual({
      type: 'load',
      cursor: 2,
    });
  });
});
