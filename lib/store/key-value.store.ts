import { STATE_LOST_PART } from '../parallel-worker.messages';
import {
  newJobState,
  processTime,
  type MemoryJobState,
} from './memory-job-state';
import { MemoryJob } from './memory.store';
import type {
  CoordinationStore,
  KeyValueStorage,
  Lease,
} from './coordination-store.interface';
import type { JobStore } from './job-store.interface';

export type { KeyValueStorage };

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
  hold: isObject,
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
export class KeyValueStore implements CoordinationStore {
  private readonly handles = new Map<string, KeyValueJob>();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: KeyValueStorage,
    private readonly prefix: string,
  ) {}

  /** Store time, as `MemoryStore`'s; tests give their own. */
  protected now(): number {
    return processTime();
  }

  job(name: string): JobStore {
    let job = this.handles.get(name);
    if (!job) {
      job = new KeyValueJob(name, {
        read: () => this.storage.get(this.key(name)),
        write: (state) => this.write(name, state),
        now: () => this.now(),
      });
      this.handles.set(name, job);
    }
    return job;
  }

  private key(job: string): string {
    return `${this.prefix}:${job}`;
  }

  private async write(job: string, state: MemoryJobState): Promise<void> {
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
}

/** What a job's handle takes from its key-value store. */
interface Saving {
  /** The job's saved value, as the storage answers it. */
  read(): unknown;
  write(state: MemoryJobState): Promise<void>;
  now(): number;
}

/**
 * One job of a `KeyValueStore`: the memory store's state machine over the
 * job's saved state, read before its first call (every call waits for it),
 * and saved after every change it makes.
 */
class KeyValueJob implements JobStore {
  /** The job's state machine, once its saved state is read. */
  private loaded?: Promise<MemoryJob>;

  constructor(
    private readonly name: string,
    private readonly saving: Saving,
  ) {}

  start: JobStore['start'] = async (o) => (await this.load()).start(o);
  claim: JobStore['claim'] = async (o) => (await this.load()).claim(o);
  commit: JobStore['commit'] = async (o) => (await this.load()).commit(o);
  heartbeat: JobStore['heartbeat'] = async (o) =>
    (await this.load()).heartbeat(o);
  complete: JobStore['complete'] = async (o) => (await this.load()).complete(o);
  fail: JobStore['fail'] = async (o) => (await this.load()).fail(o);
  release: JobStore['release'] = async (o) => (await this.load()).release(o);
  leave: NonNullable<JobStore['leave']> = async (o) =>
    (await this.load()).leave(o);
  endRun: JobStore['endRun'] = async (o) => (await this.load()).endRun(o);
  control: JobStore['control'] = async (o) => (await this.load()).control(o);
  reset: JobStore['reset'] = async (o) => (await this.load()).reset(o);
  setTotal: JobStore['setTotal'] = async (o) => (await this.load()).setTotal(o);
  takePermits: JobStore['takePermits'] = async (o) =>
    (await this.load()).takePermits(o);
  countWorkers: JobStore['countWorkers'] = async (o) =>
    (await this.load()).countWorkers(o);
  retryDead: JobStore['retryDead'] = async (o) =>
    (await this.load()).retryDead(o);
  state: JobStore['state'] = async (o) => (await this.load()).state(o);
  deadLetters: JobStore['deadLetters'] = async (o) =>
    (await this.load()).deadLetters(o);
  recordRun: NonNullable<JobStore['recordRun']> = async (o) =>
    (await this.load()).recordRun(o);
  history: NonNullable<JobStore['history']> = async (o) =>
    (await this.load()).history(o);
  hold: NonNullable<JobStore['hold']> = async (o) =>
    (await this.load()).hold(o);
  healthTurn: NonNullable<JobStore['healthTurn']> = async (o) =>
    (await this.load()).healthTurn(o);
  leasesByOwner: NonNullable<JobStore['leasesByOwner']> = async (o) =>
    (await this.load()).leasesByOwner(o);

  /** The job's state machine: its saved state is read once per process (every call waits for the same read). */
  private load(): Promise<MemoryJob> {
    if (!this.loaded) {
      this.loaded = this.read();
      // A failed read (storage unreachable) is tried again by the next call, not remembered.
      this.loaded.catch(() => (this.loaded = undefined));
    }
    return this.loaded;
  }

  private machine(state: MemoryJobState): MemoryJob {
    return new MemoryJob(this.name, state, {
      now: () => this.saving.now(),
      saved: (s) => this.saving.write(s),
    });
  }

  private async read(): Promise<MemoryJob> {
    const raw = await this.saving.read();
    if (raw === null || raw === undefined) return this.machine(newJobState());
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
    if (!lost.length)
      return this.machine({
        ...saved,
        leases: new Map(saved.leases.map((l) => [l.token, l])),
      });
    return this.lost(saved, lost);
  }

  /**
   * Keeps what is left of a job whose saved state lost `parts`, as the Redis
   * store does: its run fails "state lost", and a run without `from` is
   * refused until `from` (what is left is the state again) or reset.
   */
  private async lost(
    saved: Record<string, unknown>,
    parts: string[],
  ): Promise<MemoryJob> {
    const job = this.name;
    const s = newJobState();
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
        endedAt: this.saving.now(),
      });
    await this.saving.write(s);
    return this.machine(s);
  }
}
