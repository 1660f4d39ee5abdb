import { MemoryStore, type MemoryJobState } from './memory.store';
import type { Lease } from './coordination-store.interface';

import type { KeyValueStorage } from './coordination-store.interface';

export type { KeyValueStorage };

/**
 * The seed-style `{ get, set }` storage: coordination runs in memory as in
 * `MemoryStore`, and each job's whole state (cursor, leases, retries, dead
 * letters) is saved under `<storageKey>:<job>` after every change, so the next
 * process resumes where this one stopped. One host only: two hosts writing the
 * same key would overwrite each other.
 */
export class KeyValueStore extends MemoryStore {
  private readonly loaded = new Set<string>();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: KeyValueStorage,
    private readonly prefix: string,
  ) {
    super();
  }

  override async startRun(
    job: string,
    runId: string,
    from?: Parameters<MemoryStore['startRun']>[2],
    declaredBy?: string,
    partitions?: Parameters<MemoryStore['startRun']>[4],
    start?: Parameters<MemoryStore['startRun']>[5],
    plannedFrom?: Parameters<MemoryStore['startRun']>[6],
  ) {
    await this.load(job);
    return super.startRun(
      job,
      runId,
      from,
      declaredBy,
      partitions,
      start,
      plannedFrom,
    );
  }

  override async state(job: string) {
    await this.load(job);
    return super.state(job);
  }

  override async retryDead(job: string) {
    await this.load(job);
    return super.retryDead(job);
  }

  override async deadLetters(
    job: string,
    page?: Parameters<MemoryStore['deadLetters']>[1],
  ) {
    await this.load(job);
    return super.deadLetters(job, page);
  }

  override async recordRun(
    job: string,
    record: Parameters<MemoryStore['recordRun']>[1],
    keep: number,
  ) {
    await this.load(job);
    return super.recordRun(job, record, keep);
  }

  override async leasesByOwner(job: string) {
    await this.load(job);
    return super.leasesByOwner(job);
  }

  override async history(job: string, limit: number) {
    await this.load(job);
    return super.history(job, limit);
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

  private async load(job: string): Promise<void> {
    if (this.loaded.has(job)) return;
    const raw = await this.storage.get(this.key(job));
    this.loaded.add(job);
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
