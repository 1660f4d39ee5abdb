import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  type RangeContext,
  RangeHandler,
  RangeLoader,
  RunFailedError,
  RunRefusedError,
  SqliteStore,
} from '../../lib';

/**
 * Part of a job's state deleted from the SQLite file while its run goes on
 * (rows of its tables deleted by another program, a table dropped and made
 * again, the job's row gone while rows of its run stay): the run fails
 * "state lost" on its next store call, never `completed` with ranges never
 * handed out again; run() without `from` is refused until `from` or reset.
 */

const dirs: string[] = [];
const freshFile = () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sqlite-loss-'));
  dirs.push(dir);
  return join(dir, 'parallel-worker.db');
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const LEASE = 60_000;
const range = (ids: number[], prev: number | null) => ({
  ids,
  lastId: ids[ids.length - 1],
  prev,
});

/** Another connection to the file, as another program would edit it. */
const edit = (file: string, ...statements: string[]): void => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DatabaseSync } = require('node:sqlite');
  const db = new DatabaseSync(file, { enableForeignKeyConstraints: false });
  for (const sql of statements) db.exec(sql);
  db.close();
};

/** A run of job "items" in two partitions holding a lease, a retry waiting out its backoff and a dead letter. */
async function midRun(file: string): Promise<SqliteStore> {
  const store = new SqliteStore(file);
  const items = store.job('items');
  await items.start({
    runId: 'r1',
    declaredBy: 'A.load + A.handle',
    partitions: [
      { after: null, upTo: 100 },
      { after: 100, upTo: null },
    ],
  });
  const r = await items.commit({
    owner: 'h1',
    expected: null,
    ranges: [range([1, 2], null), range([3, 4], 2), range([5, 6], 4)],
    leaseMs: LEASE,
    partition: 0,
  });
  if (r.type !== 'leased') throw new Error(r.type);
  // The host takes part (as its heartbeats say) until it leaves.
  expect(
    await items.heartbeat({
      owner: 'h1',
      tokens: [r.leases[2].token],
      leaseMs: LEASE,
    }),
  ).toEqual([]);
  await items.fail({
    owner: 'h1',
    token: r.leases[0].token,
    error: { message: 'boom' },
    dead: true,
    retryInMs: 0,
  });
  await items.fail({
    owner: 'h1',
    token: r.leases[1].token,
    error: { message: 'again' },
    dead: false,
    retryInMs: 60_000,
  });
  expect(await items.state()).toMatchObject({
    state: 'running',
    leased: 1,
    retrying: 1,
    dead: 1,
  });
  return store;
}

const lostPart = (part: string) =>
  new RegExp(
    `^part of the coordination state of job "items" \\(run r1\\) was lost from the store \\(${part}: .*run\\('items', \\{ from \\}\\)`,
  );

describe('SqliteStore: rows of a running job deleted from outside are state lost', () => {
  it.each([
    ['leases', 'DELETE FROM pw_leases'],
    ['retries', 'DELETE FROM pw_pending'],
    ['dead letters', 'DELETE FROM pw_dead_letters'],
    ['partitions', 'DELETE FROM pw_partitions WHERE idx = 1'],
  ])(
    '%s: the next claim fails the run "state lost"; run() without from is refused; from starts again once its hosts left',
    async (part, statement) => {
      const file = freshFile();
      const store = await midRun(file);
      edit(file, statement);
      expect(
        await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
      ).toEqual({
        type: 'failed',
        error: expect.stringMatching(lostPart(part)),
      });
      expect(await store.job('items').state()).toMatchObject({
        runId: 'r1',
        state: 'failed',
        error: expect.stringMatching(lostPart(part)),
      });
      // Another host, another process: the same answer, and nothing of the run is handed out.
      const other = new SqliteStore(file);
      expect(
        await other.job('items').claim({ owner: 'h2', leaseMs: LEASE }),
      ).toMatchObject({
        type: 'failed',
      });
      await expect(
        other
          .job('items')
          .start({ runId: 'r2', declaredBy: 'A.load + A.handle' }),
      ).rejects.toThrow(lostPart(part));
      await expect(
        other
          .job('items')
          .start({ runId: 'r2', declaredBy: 'A.load + A.handle' }),
      ).rejects.toThrow(RunRefusedError);
      // A host of the lost run is still there: from would take its leases' ranges away before it saw the loss.
      await expect(
        other
          .job('items')
          .start({ runId: 'r2', from: null, declaredBy: 'A.load + A.handle' }),
      ).rejects.toThrow(/^run r1 is active/);
      await store.job('items').leave({ owner: 'h1' });
      await other.job('items').leave({ owner: 'h2' });
      expect(
        await other
          .job('items')
          .start({ runId: 'r2', from: null, declaredBy: 'A.load + A.handle' }),
      ).toEqual({ runId: 'r2', joined: false });
      expect(await other.job('items').state()).toMatchObject({
        runId: 'r2',
        state: 'running',
      });
      expect((await other.job('items').state()).error).toBeUndefined();
      expect(
        await other.job('items').claim({ owner: 'h2', leaseMs: LEASE }),
      ).not.toMatchObject({
        type: 'failed',
      });
      await store.close();
      await other.close();
    },
  );

  it('one lease row of many deleted: state lost (leases), as when all are', async () => {
    const file = freshFile();
    const store = new SqliteStore(file);
    await store.job('items').start({ runId: 'r1' });
    const r = await store.job('items').commit({
      owner: 'h1',
      expected: null,
      ranges: [range([1], null), range([2], 1), range([3], 2)],
      leaseMs: LEASE,
    });
    if (r.type !== 'leased') throw new Error(r.type);
    edit(file, `DELETE FROM pw_leases WHERE token = ${r.leases[1].token}`);
    // Seen by the host's next call of any kind: here a completion of another of its leases.
    await store
      .job('items')
      .complete({ owner: 'h1', tokens: [r.leases[0].token] });
    expect(await store.job('items').state()).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(lostPart('leases')),
    });
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toEqual({
      type: 'failed',
      error: expect.stringMatching(lostPart('leases')),
    });
    await store.close();
  });

  it('the leases table dropped and made again, empty: state lost (leases)', async () => {
    const file = freshFile();
    const store = await midRun(file);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DatabaseSync } = require('node:sqlite');
    const db = new DatabaseSync(file);
    const schema = db
      .prepare(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'pw_leases' AND sql IS NOT NULL ORDER BY type DESC",
      )
      .all()
      .map((row: { sql: string }) => row.sql);
    db.exec('DROP TABLE pw_leases');
    for (const sql of schema) db.exec(sql);
    db.close();
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toEqual({
      type: 'failed',
      error: expect.stringMatching(lostPart('leases')),
    });
    await store.close();
  });

  it("the job's row deleted while rows of its run stay: the run fails state lost, run() is refused, from starts over", async () => {
    const file = freshFile();
    const store = await midRun(file);
    edit(file, "DELETE FROM pw_jobs WHERE name = 'items'");
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toEqual({
      type: 'failed',
      error: expect.stringMatching(
        /^part of the coordination state of job "items" \(run r1\) was lost from the store \(job row: .*run\('items', \{ from \}\)/,
      ),
    });
    await expect(store.job('items').start({ runId: 'r2' })).rejects.toThrow(
      RunRefusedError,
    );
    await store.job('items').leave({ owner: 'h1' });
    expect(await store.job('items').start({ runId: 'r2', from: null })).toEqual(
      {
        runId: 'r2',
        joined: false,
      },
    );
    // Started over from the first row; the lease left is kept (handed out again once it expires).
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toEqual({
      type: 'load',
      cursor: null,
    });
    expect(await store.job('items').state()).toMatchObject({
      runId: 'r2',
      state: 'running',
      leased: 1,
    });
    await store.close();
  });

  it('nothing of the run left but the job row gone: a plain new job, the next run starts from the first row', async () => {
    const file = freshFile();
    const store = new SqliteStore(file);
    await store.job('items').start({ runId: 'r1' });
    edit(file, "DELETE FROM pw_jobs WHERE name = 'items'");
    expect(await store.job('items').start({ runId: 'r2' })).toEqual({
      runId: 'r2',
      joined: false,
    });
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toEqual({
      type: 'load',
      cursor: null,
    });
    await store.close();
  });

  it('a run from before the counts were recorded (a file of schema version 1) goes on: never taken for state lost', async () => {
    const file = freshFile();
    const store = await midRun(file);
    edit(
      file,
      'UPDATE pw_jobs SET n_leases = NULL, n_pending = NULL, n_dead = NULL, n_partitions = NULL',
    );
    // The hot path first (it counts only the leases), then a claim that counts every part.
    const r = await store.job('items').commit({
      owner: 'h1',
      expected: 6,
      ranges: [range([7, 8], 6)],
      leaseMs: LEASE,
      partition: 0,
    });
    expect(r.type).toBe('leased');
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toMatchObject({
      type: 'load',
    });
    expect(await store.job('items').state()).toMatchObject({
      state: 'running',
      leased: 2,
      retrying: 1,
      dead: 1,
    });
    // Recorded from then on: a part lost now is seen.
    edit(file, 'DELETE FROM pw_dead_letters');
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toMatchObject({
      type: 'failed',
      error: expect.stringMatching(lostPart('dead letters')),
    });
    await store.close();
  });

  it('reset after state lost: the job is idle, run() works again', async () => {
    const file = freshFile();
    const store = await midRun(file);
    edit(file, 'DELETE FROM pw_pending');
    expect(
      await store.job('items').claim({ owner: 'h1', leaseMs: LEASE }),
    ).toMatchObject({
      type: 'failed',
    });
    await store.job('items').leave({ owner: 'h1' });
    await store.job('items').reset();
    expect(await store.job('items').start({ runId: 'r2' })).toEqual({
      runId: 'r2',
      joined: false,
    });
    await store.close();
  });
});

const ROWS = 200;
const HELD = 191;
const sink = new Set<ID>();
let release: () => void = () => undefined;
let opened = new Promise<void>((r) => (release = r));

@Injectable()
class Rows {
  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    const limit = Math.min(10, ctx.limit);
    return Array.from(
      { length: Math.max(0, Math.min(limit, ROWS - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  async handle({ idsRange }: Range, ctx: RangeContext): Promise<void> {
    if (Number(idsRange[0]) === HELD && ctx.attempt === 1)
      await Promise.race([
        opened,
        new Promise((r) => ctx.signal.addEventListener('abort', r)),
      ]);
    for (const id of idsRange) {
      ctx.signal.throwIfAborted();
      sink.add(id);
    }
  }
}

describe('SQLite storage: a run whose leases are deleted from the file', () => {
  it('fails "state lost" (never completed with ids missing); run() is refused; run({ from: null }) handles every id', async () => {
    const file = freshFile();
    const moduleRef = await Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({
          storage: `sqlite:${file}`,
          workers: 0,
          concurrency: 4,
          rangeSize: 10,
          minRangeSize: 10,
          maxRangeSize: 10,
          leaseMs: 1000,
          heartbeatMs: 200,
          logging: { enabled: false },
        }),
      ],
      providers: [Rows],
    }).compile();
    const nest = await moduleRef.init();
    const pw = nest.get(ParallelWorker);
    try {
      const run = pw.run('rows').then(
        (s) => ({ status: s.status, error: '' }),
        (e: Error) => ({
          status: e instanceof RunFailedError ? 'failed' : 'rejected',
          error: e.message,
        }),
      );
      const probe = new SqliteStore(file);
      for (;;) {
        const s = await probe.job('rows').state();
        if (s.exhausted && s.leased >= 1) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await probe.close();
      edit(file, 'DELETE FROM pw_leases');
      release();
      const first = await run;
      expect(first.status).toBe('failed');
      expect(first.error).toMatch(
        /part of the coordination state of job "rows" \(run .*\) was lost from the store \(leases/,
      );
      await expect(pw.run('rows')).rejects.toThrow(
        /part of the coordination state of job "rows".* was lost.*run\('rows', \{ from \}\)/,
      );
      opened = Promise.resolve();
      sink.clear();
      expect((await pw.run('rows', { from: null })).status).toBe('completed');
      expect(sink.size).toBe(ROWS);
    } finally {
      await nest.close();
    }
  });
});
