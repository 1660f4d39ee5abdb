import { STATE_LOST_PART } from '../parallel-worker.messages';
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

const isTime = (v: unknown) => v === null || typeof v === 'number';
const isObject = (v: unknown) => typeof v === 'object' && v !== null;

/**
 * Every part the saved JSON of a job holds, each with its shape. Any one
 * missing or of another shape (the value cut short, a field dropped by
 * whatever keeps it) is state lost: the rest cannot tell which ranges were
 * handled (a lost `pending` or `leases` would skip them; a lost `nextToken`
 * would issue no token).
 */
const SAVED_PARTS: Record<string, (v: unknown) => boolean> = {
  runId: (v) => v === null || typeof v === 'string',
  state: (v) => typeof v === 'string',
  control: (v) => typeof v === 'string',
  cursor: (v) => v === null || typeof v === 'string' || typeof v === 'number',
  exhausted: (v) => typeof v === 'boolean',
  nextToken: (v) => Number.isSafeInteger(v),
  counters: isObject,
  leases: Array.isArray,
  pending: Array.isArray,
  dead: Array.isArray,
  startedAt: isTime,
  endedAt: isTime,
};
/** Parts saved only when the job has them: checked for their shape when there. */
const OPTIONAL_PARTS: Record<string, (v: unknown) => boolean> = {
  partitions: Array.isArray,
  history: Array.isArray,
  hosts: isObject,
};

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
    const lost = [
      ...Object.entries(SAVED_PARTS).filter(
        ([part, fits]) => !(part in saved) || !fits(saved[part as never]),
      ),
      ...Object.entries(OPTIONAL_PARTS).filter(
        ([part, fits]) =>
          saved[part as never] !== undefined && !fits(saved[part as never]),
      ),
    ].map(([part]) => part);
    if (!lost.length) {
      this.jobs.set(job, {
        ...saved,
        leases: new Map(saved.leases.map((l) => [l.token, l])),
      });
      return;
    }
    await this.lost(job, saved, lost);
  }

  /**
   * Keeps what is left of a job whose saved state lost `parts`, as the Redis
   * store does: its run fails "state lost", and a run without `from` is
   * refused until `from` (what is left is the state again) or reset.
   */
  private async lost(
    job: string,
    saved: Record<string, unknown>,
    parts: string[],
  ): Promise<void> {
    const s = this.job(job);
    // What is left is kept as saved; a part lost keeps its empty start.
    for (const [part, value] of Object.entries(saved))
      if (!parts.includes(part) && part !== 'leases' && part !== 'lost')
        (s as unknown as Record<string, unknown>)[part] = value;
    if (!parts.includes('leases'))
      s.leases = new Map((saved.leases as Lease[]).map((l) => [l.token, l]));
    const was = typeof saved.lost === 'string' ? `${saved.lost}, ` : '';
    s.lost = was + parts.join(', ');
    if (s.state === 'running' || parts.includes('state'))
      Object.assign(s, {
        state: 'failed',
        error: STATE_LOST_PART(job, s.runId, s.lost),
        endedAt: this.now(),
      });
    await this.saved(job);
  }
}
