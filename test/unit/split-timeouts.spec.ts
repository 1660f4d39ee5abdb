import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  fenceDdl,
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  type RangeContext,
  RangeHandler,
  RangeLoader,
} from '../../lib';

// The installed @types/node predates node:sqlite's types; the module is built into Node 24.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { DatabaseSync } = require('node:sqlite') as {
  DatabaseSync: new (file: string) => SqliteDb;
};
interface SqliteDb {
  exec(sql: string): void;
  prepare(sql: string): {
    run(...params: unknown[]): unknown;
    all(...params: unknown[]): Record<string, unknown>[];
  };
  close(): void;
}

/** Resolves once `signal` aborts (the handler obeys it). */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) =>
    signal.aborted
      ? resolve()
      : signal.addEventListener('abort', () => resolve(), { once: true }),
  );

/**
 * A table of `rows` ids. A range the handler is `stuck` on never finishes: it waits for its signal (aborted when
 * rangeTimeoutMs passes) and returns. Every id of a range that finished is counted; with `db`, the handler writes
 * them in a transaction fenced with ctx.fence, and a stuck one rolls back.
 */
@Injectable()
class Rows {
  static rows = 100;
  static stuck: (ids: number[], attempt: number) => boolean = () => false;
  static handled: number[] = [];
  /** Every range the handler was given, with its attempt and cursor before it. */
  static given: { ids: number[]; prev: ID | null; attempt: number }[] = [];
  static db?: SqliteDb;
  /** Set by `stuck`: what the stuck range does instead (a handler that goes on after its signal aborted). */
  static zombie?: (ctx: RangeContext) => Promise<void>;

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, Rows.rows - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  async handle({ idsRange, lastId }: Range, ctx: RangeContext): Promise<void> {
    const ids = idsRange as number[];
    Rows.given.push({ ids, prev: lastId, attempt: ctx.attempt });
    const stuck = Rows.stuck(ids, ctx.attempt);
    const zombie = Rows.zombie;
    Rows.zombie = undefined;
    if (stuck && zombie) return zombie(ctx);
    const db = Rows.db;
    if (!db) {
      if (stuck) return aborted(ctx.signal);
      Rows.handled.push(...ids);
      return;
    }
    db.exec('BEGIN');
    try {
      if (!(await ctx.fence(db))) return void db.exec('COMMIT');
      if (stuck) {
        await aborted(ctx.signal);
        return void db.exec('ROLLBACK');
      }
      const insert = db.prepare('INSERT INTO handled (id) VALUES (?)');
      for (const id of ids) insert.run(id);
      db.exec('COMMIT');
      Rows.handled.push(...ids);
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
  }
}

const inline: ParallelWorkerOptions = {
  workers: 0,
  concurrency: 1,
  storage: 'memory',
  rangeSize: 16,
  rangeTimeoutMs: 300,
  maxAttempts: 6,
  retryBackoffMs: 1,
  logging: { level: 'warn' },
};

const opened: { close(): Promise<void> }[] = [];
async function app(options: ParallelWorkerOptions = {}) {
  const moduleRef = await Test.createTestingModule({
    imports: [ParallelWorkerModule.forRoot({ ...inline, ...options })],
    providers: [Rows],
  }).compile();
  const a = await moduleRef.init();
  opened.push(a);
  return a.get(ParallelWorker);
}

/** 1 to n. */
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);

let warnings: string[];
let dir: string;

beforeEach(() => {
  Rows.rows = 100;
  Rows.stuck = () => false;
  Rows.handled = [];
  Rows.given = [];
  Rows.db = undefined;
  Rows.zombie = undefined;
  warnings = [];
  jest.spyOn(Logger.prototype, 'warn').mockImplementation((message) => {
    warnings.push(String(message));
  });
  dir = mkdtempSync(join(tmpdir(), 'pw-split-'));
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
  Rows.db?.close();
  rmSync(dir, { recursive: true, force: true });
  jest.restoreAllMocks();
});

describe('a range that times out (in process, workers: 0)', () => {
  it('is split in two for its retry on its first hand-out, and the halves complete; every id is handled once', async () => {
    const pw = await app();
    // Id 37 is in the range 33..48: it never finishes while it has more than 8 ids.
    Rows.stuck = (ids) => ids.includes(37) && ids.length > 8;
    const summary = await pw.run('rows');
    expect(summary).toMatchObject({
      status: 'completed',
      ids: 100,
      // 6 ranges of 16 and one of 4; 33..48 went as 33..40 and 41..48.
      ranges: { completed: 8, retried: 1, dead: 0 },
    });
    expect(sorted(Rows.handled)).toEqual(upTo(100));
    // Each half is a range after the cursor before it, at the next attempt.
    expect(
      Rows.given.filter((g) => g.ids.some((id) => id >= 33 && id <= 48)),
    ).toEqual([
      { ids: upTo(48).slice(32), prev: 32, attempt: 1 },
      { ids: [33, 34, 35, 36, 37, 38, 39, 40], prev: 32, attempt: 2 },
      { ids: [41, 42, 43, 44, 45, 46, 47, 48], prev: 40, attempt: 2 },
    ]);
    const splits = warnings.filter((w) => w.includes('split'));
    expect(splits).toEqual([
      expect.stringMatching(
        /^Job "rows": range of 16 ids 33\.\.48 \(token \d+, attempt 1\) timed out; split into 2 ranges of 8 and 8 ids for its retry in \d+ ms: the handler ran past rangeTimeoutMs \(300 ms\)$/,
      ),
    ]);
  });

  it('retries a half that times out again whole (an earlier attempt may still commit it), until the dead letters', async () => {
    const pw = await app({ rangeSize: 4, maxAttempts: 4 });
    Rows.rows = 8;
    Rows.stuck = (ids) => ids.includes(6);
    const summary = await pw.run('rows');
    // 5..8 went as 5..6 and 7..8; 5..6 was retried whole twice more, then dead-lettered.
    expect(summary).toMatchObject({
      status: 'completed',
      ids: 6,
      ranges: { completed: 2, retried: 3, dead: 1 },
    });
    expect(sorted(Rows.handled)).toEqual([1, 2, 3, 4, 7, 8]);
    expect(await pw.deadLetters('rows')).toEqual([
      expect.objectContaining({
        attempts: 4,
        range: { ids: [5, 6], prev: 4, lastId: 6, run: summary.runId },
      }),
    ]);
    expect(warnings.filter((w) => w.includes('split into'))).toHaveLength(1);
  });

  it('refuses the fence of a zombie attempt whose range was split before the run was known to fence', async () => {
    const file = join(dir, 'app.db');
    const setup = new DatabaseSync(file);
    setup.exec(fenceDdl('sqlite'));
    setup.exec('CREATE TABLE handled (id INTEGER PRIMARY KEY)');
    setup.close();
    const db = new DatabaseSync(file);
    Rows.db = db;
    Rows.rows = 16;
    const refused: string[] = [];
    const pw = await app();
    // Attempt 1 of the one range times out before any fence call of the run: it is split. Its handler goes on
    // after the abort, as a zombie, and fences then: refused, so the whole range never commits next to its halves.
    Rows.stuck = (ids, attempt) => {
      if (attempt > 1) return false;
      Rows.zombie = async (ctx) => {
        await aborted(ctx.signal);
        db.exec('BEGIN');
        try {
          await ctx.fence(db);
          db.prepare('INSERT INTO handled (id) VALUES (?)').run(ids[0]);
          db.exec('COMMIT');
        } catch (e) {
          refused.push((e as Error).message);
          db.exec('ROLLBACK');
        }
      };
      return true;
    };
    const summary = await pw.run('rows');
    expect(summary).toMatchObject({
      status: 'completed',
      ids: 16,
      ranges: { completed: 2, retried: 1, dead: 0 },
    });
    expect(refused).toEqual([
      'Job "rows": ctx.fence() refused: this attempt at the range 1..16 timed out and went to its retry split in two before its fence was called; its halves apply its ids, and nothing of this attempt may commit.',
    ]);
    const rows = db
      .prepare('SELECT id FROM handled ORDER BY id')
      .all()
      .map((r) => Number(r.id));
    expect(rows).toEqual(upTo(16));
    expect(
      Rows.given.map((g) => ({ first: g.ids[0], n: g.ids.length })),
    ).toEqual([
      { first: 1, n: 16 },
      { first: 1, n: 8 },
      { first: 9, n: 8 },
    ]);
  });

  it('is retried whole, never split, in a run whose handler fences its ranges', async () => {
    const file = join(dir, 'app.db');
    const setup = new DatabaseSync(file);
    setup.exec(fenceDdl('sqlite'));
    setup.exec('CREATE TABLE handled (id INTEGER PRIMARY KEY)');
    setup.close();
    Rows.db = new DatabaseSync(file);
    const pw = await app();
    // Stuck twice, whole; at its third attempt it completes, still whole.
    Rows.stuck = (ids, attempt) =>
      ids.includes(37) && ids.length > 4 && attempt < 3;
    const summary = await pw.run('rows');
    expect(summary).toMatchObject({
      status: 'completed',
      ids: 100,
      ranges: { completed: 7, retried: 2, dead: 0 },
    });
    expect(
      Rows.given.filter((g) => g.ids.includes(37)).map((g) => g.ids.length),
    ).toEqual([16, 16, 16]);
    expect(warnings.filter((w) => w.includes('split'))).toEqual([]);
    expect(
      warnings.filter((w) => w.includes('rangeTimeoutMs (300 ms)')),
    ).toHaveLength(2);
    // The rows the fenced transactions wrote: every id once.
    const rows = Rows.db
      .prepare('SELECT id FROM handled ORDER BY id')
      .all()
      .map((r) => Number(r.id));
    expect(rows).toEqual(upTo(100));
    const fenced = Rows.db
      .prepare('SELECT COUNT(*) AS n FROM parallel_worker_fence')
      .all();
    expect(Number(fenced[0].n)).toBe(7);
  });
});
