import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  type JobStore,
  type ID,
  type LoadContext,
  MemoryStore,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  type RangeContext,
  RangeHandler,
  RangeLoader,
} from '../../lib';
import { replaceCalls } from '../support/replace-calls';

/**
 * A host cut off from its store for longer than leaseMs (a network partition,
 * a frozen VM): its leases and its presence expire, so a reset from the CLI is
 * allowed (nothing is active). The reset keeps the run id and leaves the job
 * idle. When the host is back, its claim answers `done` and the store still
 * names its run: before, the run ended `completed` with most of its rows never
 * handled; it fails now, saying the job was reset under it.
 */
const ROWS = 20;
const sink = new Set<number>();
let release!: () => void;
const gate = new Promise<void>((r) => (release = r));
let started!: () => void;
const firstStarted = new Promise<void>((r) => (started = r));

@Injectable()
class Rows {
  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, ROWS - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  async handle({ idsRange }: Range, ctx: RangeContext): Promise<void> {
    if (Number(idsRange[0]) === 1 && ctx.attempt === 1) {
      started();
      const aborted = new Promise<void>((r) =>
        ctx.signal.addEventListener('abort', () => r()),
      );
      await Promise.race([gate, aborted]);
    }
    for (const id of idsRange as number[]) {
      ctx.signal.throwIfAborted();
      sink.add(id);
    }
  }
}

/** The calls that wait while the host is cut off. */
const BEHIND_THE_CUT = [
  'claim',
  'commit',
  'heartbeat',
  'complete',
  'fail',
  'release',
  'leave',
  'endRun',
  'state',
  'control',
  'takePermits',
  'countWorkers',
  'setTotal',
  'recordRun',
] as const;

/** The store as the host reaches it: while cut, its calls wait (queued in the client) until healed. */
class Partitioned extends MemoryStore {
  private healed: Promise<void> = Promise.resolve();
  heal: () => void = () => undefined;
  cut(): void {
    this.healed = new Promise((r) => (this.heal = r));
  }
  /** The operator's reset from elsewhere (the CLI): not behind the partition. */
  resetFromElsewhere(job: string): Promise<void> {
    return super.job(job).reset();
  }
  override job(name: string): JobStore {
    const job = super.job(name);
    const calls: Record<string, (o: never) => Promise<unknown>> = {};
    for (const call of BEHIND_THE_CUT) {
      const original = job[call] as (o: never) => Promise<unknown>;
      calls[call] = async (o) => {
        await this.healed;
        return original.call(job, o);
      };
    }
    return replaceCalls(job, calls);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a reset while the only host is cut off for longer than leaseMs', () => {
  it('the host does not report its run completed with rows never handled', async () => {
    const store = new Partitioned();
    const moduleRef = await Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({
          storage: store,
          workers: 0,
          concurrency: 4,
          rangeSize: 10,
          minRangeSize: 10,
          maxRangeSize: 10,
          leaseMs: 300,
          heartbeatMs: 100,
          logging: { enabled: false },
        }),
      ],
      providers: [Rows],
    }).compile();
    const app = await moduleRef.init();
    try {
      const pw = app.get(ParallelWorker);
      const run = pw.run('rows').then(
        (s) => s.status,
        (e: Error) => `rejected: ${e.message}`,
      );
      await firstStarted;
      // Loading is over and the other range is done: only the held range is left, on this host.
      for (;;) {
        const s = await store.job('rows').state();
        if (s.exhausted && s.counters.completed >= 1) break;
        await sleep(10);
      }
      store.cut();
      await sleep(1000);
      await store.resetFromElsewhere('rows');
      store.heal();
      release();
      const status = await run;
      const missing = Array.from({ length: ROWS }, (_, i) => i + 1).filter(
        (id) => !sink.has(id),
      );
      // Never completed with rows unhandled: the run fails and says why; the next run handles every row again.
      expect(status).toMatch(
        /^rejected: .*job "rows" was reset while run [0-9a-f-]+ was still going on this host/,
      );
      expect(missing.length).toBeGreaterThan(0);
      store.heal();
      const again = await pw.run('rows');
      expect(again.status).toBe('completed');
      expect(
        Array.from({ length: ROWS }, (_, i) => i + 1).filter(
          (id) => !sink.has(id),
        ),
      ).toEqual([]);
    } finally {
      release();
      store.heal();
      await app.close();
    }
  }, 30_000);
});
