import { KeyValueStore, MemoryStore } from '../../lib';
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
    await first.startRun('users', 'r1');
    const claim = await first.commit(
      'users',
      'h1',
      null,
      [{ ids: [1, 2], lastId: 2, prev: null }],
      10_000,
    );
    expect(claim.type).toBe('leased');
    expect(JSON.parse(kv.get('pw:users') as string)).toMatchObject({
      cursor: 2,
      runId: 'r1',
    });

    const second = new KeyValueStore(storage, 'pw');
    expect(await second.startRun('users', 'r2')).toEqual({
      runId: 'r1',
      joined: true,
    });
    expect((await second.state('users')).leased).toBe(1);
  });
});

describe('KeyValueStore subclass', () => {
  it("loads the saved job before a subclass's own override of a call", async () => {
    const kv = new Map<string, string>();
    const storage = {
      get: (k: string) => kv.get(k),
      set: (k: string, v: string) => void kv.set(k, v),
    };
    await new KeyValueStore(storage, 'pw').startRun('users', 'r1');
    class Counting extends KeyValueStore {
      seen: string[] = [];
      override async state(job: string, declaredBy?: string) {
        const s = await super.state(job, declaredBy);
        this.seen.push(String(s.runId));
        return s;
      }
    }
    const store = new Counting(storage, 'pw');
    expect((await store.state('users')).runId).toBe('r1');
    expect(store.seen).toEqual(['r1']);
  });
});

describe('MemoryStore time', () => {
  afterEach(() => jest.restoreAllMocks());

  it('keeps leases through a wall-clock step forward', async () => {
    const store = new MemoryStore();
    await store.startRun('items', 'r1');
    await store.commit(
      'items',
      'h1',
      null,
      [{ ids: [1, 2], lastId: 2, prev: null }],
      10_000,
    );
    const wall = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => wall + 3_600_000);
    // Another host's claim finds nothing expired: the lease is still h1's.
    expect(await store.claim('items', 'h2', 10_000)).toEqual({
      type: 'load',
      cursor: 2,
    });
  });
});
