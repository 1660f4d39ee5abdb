import Database from 'better-sqlite3';
import { createSqliteItems, sqliteCounts } from '../support/sqlite';
import { randomBytes } from 'node:crypto';
import { runFixture, startFixture } from '../support/fixture';
import { REDIS_URL } from '../support/redis-server';

const ROWS = 20_000;

/** Real cluster processes of the compiled fixture app against a real SQLite file. */
describe('cluster workers on SQLite (e2e)', () => {
  it.each([
    ['2 workers', 2],
    ['4 workers', 4],
    ['inline (workers: 0)', 0],
  ])('handles every row exactly once with %s', async (_name, workers) => {
    const db = createSqliteItems(ROWS);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: workers,
      FIXTURE_RANGE_SIZE: 250,
    });

    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      job: 'items',
      status: 'completed',
      ids: ROWS,
      ranges: { completed: ROWS / 250, retried: 0, dead: 0 },
      workers: { started: workers, restarted: 0 },
      host: { ids: ROWS, ranges: ROWS / 250 },
    });
    expect(sqliteCounts(db)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
  });

  it('forks no worker when a run has nothing to do: an empty table, or a table already done', async () => {
    const empty = await runFixture({
      FIXTURE_DB: createSqliteItems(0),
      FIXTURE_WORKERS: 2,
    });
    expect(empty.code).toBe(0);
    expect(empty.summary).toMatchObject({
      status: 'completed',
      ids: 0,
      workers: { started: 0, restarted: 0 },
    });
    expect(empty.output).not.toContain('EVENT WorkerExited');

    // A cron tick after the job caught up: the cursor (in Redis) is at the end, the next run loads nothing new.
    const db = createSqliteItems(1000);
    const env = {
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 250,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-idle-${randomBytes(4).toString('hex')}`,
    };
    const first = await runFixture(env);
    expect(first.summary).toMatchObject({
      status: 'completed',
      ids: 1000,
      workers: { started: 2 },
    });
    const started = Date.now();
    const idle = await runFixture(env);
    expect(idle.code).toBe(0);
    expect(idle.summary).toMatchObject({
      status: 'completed',
      ids: 0,
      workers: { started: 0 },
    });
    expect(idle.output).not.toContain('EVENT WorkerExited');
    expect(sqliteCounts(db)).toMatchObject({
      total: 1000,
      once: 1000,
      missed: [],
      duplicated: [],
    });
    console.log(
      `run with nothing new: 0 workers forked, the process done in ${Date.now() - started} ms (app start included)`,
    );
  });

  /** How many rows were handled how many times, e.g. { 2: 5000 }. */
  const timesHandled = (file: string): Record<number, number> => {
    const db = new Database(file, { readonly: true });
    try {
      const rows = db
        .prepare(
          'SELECT processed, COUNT(*) AS n FROM items GROUP BY processed',
        )
        .all() as { processed: number; n: number }[];
      return Object.fromEntries(rows.map((r) => [r.processed, r.n]));
    } finally {
      db.close();
    }
  };
  /** The pids that handled ranges, per run id (the fixture's HANDLED lines). */
  const handlers = (output: string): Map<string, Set<number>> => {
    const byRun = new Map<string, Set<number>>();
    for (const [, pid, run] of output.matchAll(
      /HANDLED pid=(\d+) run=(\S+)/g,
    )) {
      if (!byRun.has(run)) byRun.set(run, new Set());
      byRun.get(run)?.add(Number(pid));
    }
    return byRun;
  };
  /** The pids of the worker processes that booted (the fixture's WORKER_UP lines). */
  const workersUp = (output: string): number[] =>
    [...output.matchAll(/WORKER_UP pid=(\d+)/g)].map((m) => Number(m[1]));
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('serves a second run in the same process with the same warm workers: none forked, every row once per run, and the process exits', async () => {
    const db = createSqliteItems(5000);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 250,
      FIXTURE_RUNS: 2,
      FIXTURE_TRACE_PIDS: 1,
    });
    expect(result.code).toBe(0);
    const [first, second] = result.summaries;
    expect(first).toMatchObject({
      status: 'completed',
      ids: 5000,
      workers: { started: 2, restarted: 0 },
    });
    expect(second).toMatchObject({
      status: 'completed',
      ids: 5000,
      workers: { started: 0, restarted: 0 },
    });
    // Two worker processes ever started in this process, and they handled both runs.
    const up = workersUp(result.output);
    expect(up).toHaveLength(2);
    const pids = handlers(result.output);
    for (const run of [first.runId, second.runId]) {
      expect(pids.get(run)?.size).toBeGreaterThan(0);
      for (const pid of pids.get(run) ?? []) expect(up).toContain(pid);
    }
    expect(timesHandled(db)).toEqual({ 2: 5000 });
    expect(result.output).not.toContain('EVENT WorkerExited');
    // app.close() dismissed them: none is left behind.
    for (const pid of up) expect(alive(pid)).toBe(false);
  });

  it('forks new workers for every run with workerIdleMs: 0', async () => {
    const db = createSqliteItems(2000);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 250,
      FIXTURE_RUNS: 2,
      FIXTURE_TRACE_PIDS: 1,
      FIXTURE_WORKER_IDLE_MS: 0,
    });
    expect(result.code).toBe(0);
    const [first, second] = result.summaries;
    expect(first).toMatchObject({ ids: 2000, workers: { started: 2 } });
    expect(second).toMatchObject({ ids: 2000, workers: { started: 2 } });
    const pids = handlers(result.output);
    for (const pid of pids.get(second.runId) ?? [])
      expect(pids.get(first.runId)).not.toContain(pid);
    expect(timesHandled(db)).toEqual({ 2: 2000 });
  });

  it('ends a run-once main.ts that never calls app.close(): idle workers keep nothing alive, and follow the primary out', async () => {
    const db = createSqliteItems(2000);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 250,
      FIXTURE_TRACE_PIDS: 1,
      FIXTURE_NO_CLOSE: 1,
      FIXTURE_WORKER_IDLE_MS: 600_000,
    });
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({ status: 'completed', ids: 2000 });
    const workers = workersUp(result.output);
    expect(workers).toHaveLength(2);
    // They see the primary's channel close and end their apps.
    const deadline = Date.now() + 10_000;
    while (workers.some(alive) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(workers.filter(alive)).toEqual([]);
    expect(sqliteCounts(db)).toMatchObject({
      once: 2000,
      missed: [],
      duplicated: [],
    });
  });

  it('hands the range of a SIGKILLed worker out again: no row lost, only that range twice', async () => {
    const db = createSqliteItems(ROWS);
    const run = startFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_SLOW_IDS: 8001,
      FIXTURE_HANDLER_MS: 2,
    });
    const [, pid, first, last] = await run.waitFor(
      /SLOW_RANGE pid=(\d+) first=(\d+) last=(\d+)/,
    );
    process.kill(Number(pid), 'SIGKILL');
    const result = await run.exited;

    expect(result.code).toBe(0);
    expect(result.output).toContain(
      `(pid ${pid}) exited with signal SIGKILL during range of 100 ids ${first}..${last}`,
    );
    expect(result.output).toMatch(
      new RegExp(
        `EVENT WorkerExited \\{"pid":${pid},"code":null,"signal":"SIGKILL"\\}`,
      ),
    );
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
      ranges: { retried: 1, dead: 0 },
      workers: { started: 2, restarted: 1 },
    });
    const counts = sqliteCounts(db);
    expect(counts.missed).toEqual([]);
    // The killed worker had written its range before it died: that range, and only it, ran twice.
    expect(counts.duplicated).toEqual(
      Array.from({ length: 100 }, (_, i) => Number(first) + i),
    );
    console.log(
      `SIGKILL: ${ROWS} rows, 0 lost, ${counts.duplicated.length} duplicated (the killed range ${first}..${last}), ${(result.summary!.durationMs / 1000).toFixed(1)} s`,
    );
  });

  it('re-leases none of its own ranges after its event loop stalls longer than leaseMs', async () => {
    const db = createSqliteItems(ROWS);
    // The loader blocks the primary for 2 s, twice leaseMs, while both workers hold ranges.
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_HANDLER_MS: 5,
      FIXTURE_LEASE_MS: 1000,
      FIXTURE_STALL_AT: 20,
      FIXTURE_STALL_MS: 2000,
    });

    expect(result.code).toBe(0);
    expect(result.output).toMatch(/STALL pid=\d+ ms=2000/);
    expect(result.output).not.toContain('re-leased after its lease expired');
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
      ranges: { retried: 0, dead: 0 },
    });
    expect(sqliteCounts(db)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
    console.log(
      `primary stalled 2.0 s (leaseMs 1000): ${ROWS} rows, 0 lost, 0 duplicated, 0 retried, ${(result.summary!.durationMs / 1000).toFixed(1)} s`,
    );
  });

  it('ends the run as failed with the reason when the restart cap is reached', async () => {
    const db = createSqliteItems(ROWS);
    const run = startFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 1,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_SLOW_IDS: 501,
      FIXTURE_MAX_RESTARTS: 0,
    });
    const [, pid] = await run.waitFor(/SLOW_RANGE pid=(\d+)/);
    process.kill(Number(pid), 'SIGKILL');
    const result = await run.exited;

    expect(result.code).toBe(1);
    expect(result.failed?.summary).toMatchObject({
      status: 'failed',
      workers: { started: 1, restarted: 0 },
    });
    expect(result.failed?.message).toMatch(
      /Job "items" failed .*exited with signal SIGKILL and the restart cap maxAllowedWorkerRestartsCount = 0 is reached/,
    );
    expect(sqliteCounts(db).missed.length).toBeGreaterThan(0);
  });

  it('fails a range that runs past rangeTimeoutMs, kills its unresponsive worker and hands the range out again', async () => {
    const db = createSqliteItems(ROWS);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_BUSY_IDS: 5050,
      FIXTURE_BUSY_MS: 30_000,
      FIXTURE_RANGE_TIMEOUT_MS: 1000,
      FIXTURE_HANDLER_MS: 40,
    });

    expect(result.code).toBe(0);
    // Whole, not split: its worker, spinning, never answered whether its fence was called.
    expect(result.output).toMatch(
      /range of 100 ids 5001\.\.5100 \(token \d+, attempt 1\) failed and will be retried in \d+ ms: the handler ran past rangeTimeoutMs \(1000 ms\)/,
    );
    expect(result.output).toMatch(
      /worker w-[0-9a-f]+ \(pid \d+\) is unresponsive \d+ ms into range of 100 ids 5001\.\.5100/,
    );
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS,
      ranges: { retried: 1, dead: 0 },
      workers: { restarted: 1 },
    });
    expect(sqliteCounts(db)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });
  });

  it('retries a throwing handler and dead-letters a range that always throws, and the run goes on', async () => {
    const db = createSqliteItems(ROWS);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_FAIL_ONCE: 250,
      FIXTURE_FAIL_ALWAYS: 12_345,
    });

    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS - 100,
      ranges: { completed: 199, retried: 3, dead: 1 },
    });
    expect(result.output).toContain(
      'EVENT RangeFailed {"first":201,"attempt":1,"outcome":"retry","error":"transient failure at 201"}',
    );
    expect(result.output).toContain(
      'EVENT RangeFailed {"first":12301,"attempt":3,"outcome":"dead","error":"poison range at 12301"}',
    );
    expect(result.output).toMatch(
      /range of 100 ids 12301\.\.12400 \(token \d+, attempt 3\) failed and sent to the dead letters after 3 attempts: poison range at 12301/,
    );
    const counts = sqliteCounts(db);
    expect(counts.duplicated).toEqual([]);
    expect(counts.missed).toEqual(
      Array.from({ length: 100 }, (_, i) => 12_301 + i),
    );
  });

  it('fails a run whose handler throws for every row once 20 ranges are dead, long before the table is dead-lettered', async () => {
    const db = createSqliteItems(ROWS);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_MAX_ATTEMPTS: 1,
      // One id of every range: every range throws.
      FIXTURE_FAIL_ALWAYS: Array.from(
        { length: ROWS / 100 },
        (_, i) => i * 100 + 1,
      ).join(','),
    });

    expect(result.code).toBe(1);
    expect(result.summary).toBeUndefined();
    expect(result.failed?.message).toMatch(
      /^Job "items" failed \(run [^)]+\): \d+ of the \d+ ranges of job "items" that ended in this run went to the dead letters \(100%, more than maxDeadRatio 0\.5\); the last handler error: poison range at \d+\. Fix the handler, then retryDead\('items'\) and run again; or raise maxDeadRatio \(1: never fail for dead letters\)\.$/,
    );
    expect(result.failed?.summary).toMatchObject({
      status: 'failed',
      ids: 0,
      ranges: { completed: 0 },
    });
    // Every range the handler was given failed once (maxAttempts 1): about 20 of the 200, not all of them.
    const tried = result.output.match(/EVENT RangeFailed /g) ?? [];
    expect(tried.length).toBeGreaterThanOrEqual(20);
    expect(tried.length).toBeLessThan(60);
    expect(result.failed?.summary.ranges.dead).toBe(tried.length);
    expect(sqliteCounts(db).missed).toHaveLength(ROWS);
  });

  it('dead-letters a range that kills its worker every time, and only it: ranges the worker had not started go out again untouched', async () => {
    const db = createSqliteItems(ROWS);
    // Quick handlers at concurrency 1: each worker holds a backlog of ranges it has not started when it dies.
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_CRASH_IDS: 12_345,
    });

    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS - 100,
      ranges: { completed: 199, retried: 2, dead: 1 },
    });
    expect(result.output).toMatch(
      /range of 100 ids 12301\.\.12400 \(token \d+, attempt 3\) failed and sent to the dead letters after 3 attempts: worker w-[0-9a-f]+ \(pid \d+\) exited with signal SIGKILL/,
    );
    // The three failures are the poison range's; every other range the dead workers held counted no attempt.
    expect(
      result.output.match(
        /range of \d+ ids \d+\.\.\d+ \(token \d+, attempt \d+\) failed/g,
      ),
    ).toEqual(
      [1, 2, 3].map((attempt) =>
        expect.stringMatching(
          new RegExp(
            `ids 12301\\.\\.12400 \\(token \\d+, attempt ${attempt}\\)`,
          ),
        ),
      ),
    );
    const counts = sqliteCounts(db);
    expect(counts.missed).toEqual(
      Array.from({ length: 100 }, (_, i) => 12_301 + i),
    );
    expect(counts.duplicated).toEqual([]);
  });

  it.each([
    [
      'unsorted',
      /the range loader returned ids that are not sorted ascending: 201 at index 1 comes after 202/,
    ],
    ['duplicate', /the range loader returned the id 201 twice \(index 1\)/],
    [
      'before-cursor',
      /the range loader returned 199, which is not after the cursor 200/,
    ],
    [
      'not-array',
      /the range loader returned 'oops', which is neither an array of ids nor a range object/,
    ],
  ])(
    'fails the run on %s loader output, naming the job and the value, and hands out nothing from that call',
    async (bad, message) => {
      const db = createSqliteItems(ROWS);
      const result = await runFixture({
        FIXTURE_DB: db,
        FIXTURE_WORKERS: 2,
        FIXTURE_RANGE_SIZE: 100,
        FIXTURE_BAD: bad,
        FIXTURE_BAD_AT: 3,
      });

      expect(result.code).toBe(1);
      expect(result.failed?.summary.status).toBe('failed');
      expect(result.failed?.message).toMatch(
        /^Job "items" failed \(run [0-9a-f-]+\): Job "items": /,
      );
      expect(result.failed?.message).toMatch(message);
      const counts = sqliteCounts(db);
      // Only ranges 1..200 were loaded before the bad call; nothing from it or after it was handed out.
      expect(counts.missed.filter((id) => id > 200)).toEqual(
        Array.from({ length: ROWS - 200 }, (_, i) => 201 + i),
      );
      expect(counts.duplicated).toEqual([]);
    },
  );

  it('fires @Cron jobs in the primary only, never in a worker', async () => {
    const db = createSqliteItems(2000);
    const result = await runFixture({
      FIXTURE_DB: db,
      FIXTURE_WORKERS: 2,
      FIXTURE_RANGE_SIZE: 100,
      FIXTURE_HANDLER_MS: 250,
      FIXTURE_CRON: 1,
      FIXTURE_CRON_WAIT_MS: 1500,
    });

    expect(result.code).toBe(0);
    expect(result.summary?.ids).toBe(2000);
    // The workers lived for about 2.5 s each: long enough for a per-second cron to fire had it been mounted.
    expect(result.output).toMatch(/CRON_TICK pid=\d+ worker=false/);
    expect(result.output).not.toMatch(/CRON_TICK pid=\d+ worker=true/);
    const pids = new Set(
      [...result.output.matchAll(/CRON_TICK pid=(\d+)/g)].map((m) => m[1]),
    );
    expect(pids.size).toBe(1);
    expect(result.summary?.durationMs).toBeGreaterThan(2000);
  });
});
