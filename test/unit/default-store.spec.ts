import { Injectable, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerConfigError,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  RangeHandler,
  RangeLoader,
} from '../../lib';

const ROWS = 300;

@Injectable()
class Rows {
  static handled: ID[] = [];
  /** Stops the run (as Ctrl+C would) once this many ids were handled. */
  static stopAt = Infinity;
  static worker?: ParallelWorker;

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    const n = Math.max(0, Math.min(ctx.limit, ROWS - from + 1));
    return Array.from({ length: n }, (_, i) => from + i);
  }

  @RangeHandler('rows')
  handle({ idsRange }: Range): void {
    Rows.handled.push(...idsRange);
    if (Rows.handled.length >= Rows.stopAt) void Rows.worker?.stop();
  }
}

const options: ParallelWorkerOptions = {
  workers: 0,
  rangeSize: 10,
  logging: { level: 'warn' },
};

/** A new app, as a new process of the same program would make it. */
async function app(extra: ParallelWorkerOptions = {}) {
  const ref = await Test.createTestingModule({
    imports: [ParallelWorkerModule.forRoot({ ...options, ...extra })],
    providers: [Rows],
  }).compile();
  const nest = await ref.init();
  Rows.worker = nest.get(ParallelWorker);
  return nest;
}

describe('the default store', () => {
  const home = process.cwd();
  let dir: string;
  let warnings: string[];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-default-'));
    process.chdir(dir);
    Rows.handled = [];
    Rows.stopAt = Infinity;
    warnings = [];
    jest
      .spyOn(Logger.prototype, 'warn')
      .mockImplementation((m: unknown) => void warnings.push(String(m)));
  });
  afterEach(() => {
    jest.restoreAllMocks();
    process.chdir(home);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps progress in parallel-worker.db in the working directory: a new app resumes a stopped run, nothing twice', async () => {
    Rows.stopAt = 120;
    const first = await app();
    const stopped = await first.get(ParallelWorker).run('rows');
    await first.close();
    expect(stopped.status).toBe('stopped');
    expect(existsSync(join(dir, 'parallel-worker.db'))).toBe(true);
    const before = Rows.handled.length;
    expect(before).toBeLessThan(ROWS);

    Rows.stopAt = Infinity;
    const second = await app();
    const done = await second.get(ParallelWorker).run('rows');
    await second.close();
    expect(done).toMatchObject({ status: 'completed', runId: stopped.runId });
    expect(done.host.ids).toBe(ROWS - before);
    expect([...Rows.handled].sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: ROWS }, (_, i) => i + 1),
    );

    // A run after that has nothing new to do: the cursor was kept.
    Rows.handled = [];
    const third = await app();
    const again = await third.get(ParallelWorker).run('rows');
    await third.close();
    expect(again).toMatchObject({ status: 'completed', ids: 0 });
    expect(Rows.handled).toEqual([]);
    // The default store says nothing about forgetting.
    expect(warnings.join('\n')).not.toContain("storage 'memory'");
  });

  it('a run with nothing to do logs nothing at info (a quiet cron tick); a run with work says how it runs', async () => {
    const lines: string[] = [];
    jest
      .spyOn(Logger.prototype, 'log')
      .mockImplementation((m: unknown) => void lines.push(String(m)));
    const nest = await app({ logging: { level: 'info' } });
    const pw = nest.get(ParallelWorker);
    expect((await pw.run('rows')).ids).toBe(ROWS);
    const worked = lines.splice(0).filter((l) => l.startsWith('Job '));
    expect(worked).toEqual([
      expect.stringMatching(
        /^Job "rows": run \S+ hands out ranges \(inline, workers: 0\)\.$/,
      ),
      expect.stringMatching(/^Job "rows" completed: 300 ids in 30 ranges/),
    ]);
    for (let tick = 0; tick < 3; tick++)
      expect((await pw.run('rows')).ids).toBe(0);
    await nest.close();
    expect(lines.filter((l) => l.startsWith('Job '))).toEqual([]);
  });

  it('a working directory it cannot write: run() rejects at once naming the default store, its path and what to do', async () => {
    const file = join(dir, 'parallel-worker.db');
    // A directory where the file should be: SQLite cannot open it (as a read-only directory, even for root).
    mkdirSync(file);
    const nest = await app();
    const failed = await nest
      .get(ParallelWorker)
      .run('rows')
      .catch((e: Error) => e);
    await nest.close();
    expect(failed).toBeInstanceOf(ParallelWorkerConfigError);
    expect((failed as Error).message).toContain(
      `option "storage" (not set: the default store, the SQLite file parallel-worker.db in the working directory, ${file}): cannot open or create the SQLite file ${file}`,
    );
    expect((failed as Error).message).toContain(
      "or name another path with storage: 'sqlite:<path>'",
    );
    expect(Rows.handled).toEqual([]);
  });

  it("storage: 'memory' forgets with the process and says so once, at the first run", async () => {
    const first = await app({ storage: 'memory' });
    await first.get(ParallelWorker).run('rows');
    await first.get(ParallelWorker).run('rows', { from: null });
    await first.close();
    expect(existsSync(join(dir, 'parallel-worker.db'))).toBe(false);
    const said = warnings.filter((w) => w.includes("storage 'memory'"));
    expect(said).toEqual([
      expect.stringContaining(
        'Job "rows": storage \'memory\' keeps the cursor, leases and dead letters in this process only',
      ),
    ]);
    // A new app starts over: every row handled again.
    Rows.handled = [];
    const second = await app({ storage: 'memory' });
    const summary = await second.get(ParallelWorker).run('rows');
    await second.close();
    expect(summary.ids).toBe(ROWS);
  });
});
