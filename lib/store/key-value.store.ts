import { MemoryStore, type MemoryJobState } from './memory.store';
import type {
  CoordinationStore,
  KeyValueStorage,
  Lease,
} from './coordination-store.interface';

export type { KeyValueStorage };

/**
 * Every store call, each of which reads or changes one job (its first
 * argument). Typed as a record of the interface's methods, so a method added
 * to `CoordinationStore` does not compile until it is listed here, and loaded.
 */
const JOB_CALLS: Record<
  Exclude<keyof CoordinationStore, 'where' | 'close'>,
  true
> = {
  startRun: true,
  claim: true,
  commit: true,
  heartbeat: true,
  complete: true,
  fail: true,
  release: true,
  leave: true,
  endRun: true,
  control: true,
  reset: true,
  setTotal: true,
  takePermits: true,
  countWorkers: true,
  retryDead: true,
  state: true,
  deadLetters: true,
  recordRun: true,
  history: true,
  leasesByOwner: true,
};

type JobCall = (job: string, ...rest: unknown[]) => Promise<unknown>;

/**
 * The seed-style `{ get, set }` storage: coordination runs in memory as in
 * `MemoryStore`, and each job's whole state (cursor, leases, retries, dead
 * letters, history, declaration, token counter) is saved under
 * `<storageKey>:<job>` after every change, so the next process resumes where
 * this one stopped. Every call loads the job's saved state first, whichever
 * call a process makes first. One host only: two hosts writing the same key
 * would overwrite each other.
 */
export class KeyValueStore extends MemoryStore {
  /** By job: its saved state, read once per process (every call waits for the same read). */
  private readonly loads = new Map<string, Promise<void>>();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: KeyValueStorage,
    private readonly prefix: string,
  ) {
    super();
    // One wrapper for every call rather than an override each: none can act on a job before its saved state is in.
    // The most derived method is wrapped, so a subclass's override loads first too.
    for (const name of Object.keys(JOB_CALLS)) {
      const call = (this as unknown as Record<string, JobCall>)[name];
      Object.defineProperty(this, name, {
        value: async (job: string, ...rest: unknown[]) => {
          await this.load(job);
          return call.call(this, job, ...rest);
        },
      });
    }
  }

  protected override async saved(job: string): Promise<void> {
    const state = this.jobs.get(job) as MemoryJobState;
    const value = JSON.stringify({
      ...state,
      leases: [...state.leases.values()],
    });
    // Writes go out in order: a slow older write never overwrites a newer state.
    const write = this.writes.then(() =>
      this.storage.set(this.key(job), value),
    );
    this.writes = write.catch(() => undefined);
    await write;
  }

  private key(job: string): string {
    return `${this.prefix}:${job}`;
  }

  private load(job: string): Promise<void> {
    let loading = this.loads.get(job);
    if (!loading) {
      loading = this.read(job);
      // A failed read (storage unreachable) is tried again by the next call, not remembered.
      loading.catch(() => this.loads.delete(job));
      this.loads.set(job, loading);
    }
    return loading;
  }

  private async read(job: string): Promise<void> {
    const raw = await this.storage.get(this.key(job));
    if (raw === null || raw === undefined) return;
    const saved = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Omit<
      MemoryJobState,
      'leases'
    > & { leases: Lease[] };
    this.jobs.set(job, {
      ...saved,
      leases: new Map(saved.leases.map((l) => [l.token, l])),
    });
  }
}
