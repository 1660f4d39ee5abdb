import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  SqliteStore,
  StoreUnavailableError,
} from '../../lib';

/** Ids 1..rows, as a table the runs go over; `handled` counts each id's handler calls. */
@Injectable()
class Rows {
  static rows = 0;
  static handled = new Map<ID, number>();

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, Rows.rows - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  handle({ idsRange }: Range): void {
    for (const id of idsRange)
      Rows.handled.set(id, (Rows.handled.get(id) ?? 0) + 1);
  }
}

const inline = (
  storage: ParallelWorkerOptions['storage'],
): ParallelWorkerOptions => ({
  workers: 0,
  rangeSize: 10,
  logging: { enabled: false },
  storage,
  storeConnectTimeoutMs: 1000,
});

async function app(options: ParallelWorkerOptions) {
  const moduleRef = await Test.createTestingModule({
    imports: [ParallelWorkerModule.forRoot(options)],
    providers: [Rows],
  }).compile();
  return moduleRef.init();
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-sqlite-module-'));
  Rows.rows = 95;
  Rows.handled = new Map();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("storage: 'sqlite:<path>'", () => {
  it('runs over every id once; an app started again on the file resumes after the cursor and keeps the history', async () => {
    const file = join(dir, 'state.db');
    const first = await app(inline(`sqlite:${file}`));
    const summary = await first.get(ParallelWorker).run('rows');
    expect(summary).toMatchObject({ status: 'completed', ids: 95 });
    await first.close();

    Rows.rows = 120;
    const second = await app(inline(`sqlite:${file}`));
    const worker = second.get(ParallelWorker);
    expect(await worker.run('rows')).toMatchObject({
      status: 'completed',
      ids: 25,
    });
    expect([...Rows.handled.keys()].length).toBe(120);
    expect([...Rows.handled.values()].every((times) => times === 1)).toBe(true);
    expect(
      (await worker.history('rows', { limit: 10 })).map((r) => r.runId),
    ).toEqual([expect.any(String), summary.runId]);
    await second.close();
  });

  it("'sqlite:' with no path is refused at bootstrap, saying how to name the file", async () => {
    await expect(app(inline('sqlite:'))).rejects.toThrow(
      "option \"storage\" is 'sqlite:' with no path: name the file, as in storage: 'sqlite:./parallel-worker.db'",
    );
  });

  it('a file that is not its database: run() rejects at once with the config error; nothing started', async () => {
    const file = join(dir, 'notes.db');
    writeFileSync(
      file,
      'not a database at all, just some text here\n'.repeat(5),
    );
    const a = await app(inline(`sqlite:${file}`));
    const run = a.get(ParallelWorker).run('rows');
    await expect(run).rejects.toThrow(ParallelWorkerConfigError);
    await expect(run).rejects.toThrow(`${file} is not a SQLite database`);
    expect(Rows.handled.size).toBe(0);
    await a.close();
  });

  it('a file locked past the busy timeout for storeConnectTimeoutMs: run() rejects with a StoreUnavailableError naming the file and what to do', async () => {
    const file = join(dir, 'state.db');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DatabaseSync } = require('node:sqlite');
    const holder = new DatabaseSync(file);
    holder.exec('PRAGMA journal_mode = WAL');
    holder.exec('BEGIN IMMEDIATE');
    const a = await app(inline(new SqliteStore(file, { busyTimeoutMs: 100 })));
    const run = a.get(ParallelWorker).run('rows');
    await expect(run).rejects.toThrow(StoreUnavailableError);
    await expect(run).rejects.toThrow(
      `Job "rows" did not start: the coordination store (SQLite file ${file}) did not answer within 1000 ms (storeConnectTimeoutMs): the SQLite file ${file} stayed locked by another process for more than 100 ms (the busy timeout)`,
    );
    holder.exec('ROLLBACK');
    holder.close();
    expect(Rows.handled.size).toBe(0);
    await a.close();
  });
});
