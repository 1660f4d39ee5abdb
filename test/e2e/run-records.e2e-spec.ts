import { randomBytes } from 'node:crypto';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeadLetter, RunRecord } from '../../lib';
import type { WrittenSpan } from '../fixture/otel';
import { runCli } from '../support/cli';
import { type FixtureResult, startFixture } from '../support/fixture';
import {
  createPgItems,
  DATABASE_URL,
  dropPgTable,
  pgCounts,
  pgQuery,
} from '../support/postgres';
import { REDIS_URL } from '../support/redis-server';

const ROWS = 20_000;

/** The JSON after `TAG ` on the first line that starts with it. */
function jsonLine<T>(output: string, tag: string): T {
  const line = output.split('\n').find((l) => l.startsWith(`${tag} `));
  if (!line) throw new Error(`no ${tag} line in:\n${output.slice(-3000)}`);
  return JSON.parse(line.slice(tag.length + 1)) as T;
}

interface ParamsLine {
  role: string;
  pid: number;
  run: string;
  params: unknown;
}

/** The PARAMS lines of FIXTURE_SHOW_PARAMS: what each role of each process saw as ctx.params. */
const paramsLines = (output: string): ParamsLine[] =>
  [
    ...output.matchAll(/^PARAMS role=(\w+) pid=(\d+) run=(\S+) params=(.*)$/gm),
  ].map(([, role, pid, run, params]) => ({
    role,
    pid: Number(pid),
    run,
    params: JSON.parse(params),
  }));

const workerPids = (output: string): number[] =>
  [...output.matchAll(/^WORKER_UP pid=(\d+)$/gm)].map((m) => Number(m[1]));

const sorted = (values: Iterable<number>) =>
  [...new Set(values)].sort((a, b) => a - b);

/**
 * Run params, the run history, partial range failures and OpenTelemetry
 * spans, with real cluster workers of the compiled fixture app against real
 * PostgreSQL tables (and a real Redis for several hosts).
 */
describe('run params, history, partial failures and spans on PostgreSQL (e2e)', () => {
  const tables: string[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const table = async () => {
    const t = await createPgItems(ROWS);
    tables.push(t);
    return t;
  };
  const env = (t: string) => ({
    DATABASE_URL,
    FIXTURE_TABLE: t,
    FIXTURE_WORKERS: 2,
  });
  const prefix = (name: string) =>
    `pw-${name}-${randomBytes(4).toString('hex')}`;

  it('gives the params to the loader, the handler and @RangeTotal on 2 hosts, and refuses a third with other params', async () => {
    const t = await table();
    const params = { tag: 'x', n: 1 };
    // Host A's two workers hold the first two ranges (attempt 1) until the file exists: the run stays active on
    // both hosts until the third host was refused, however slowly the hosts start, and host B handles the rest.
    const dir = mkdtempSync(join(tmpdir(), 'pw-hold-'));
    dirs.push(dir);
    const hold = join(dir, 'go');
    const host = {
      ...env(t),
      REDIS_URL,
      FIXTURE_PREFIX: prefix('params'),
      FIXTURE_PARAMS: JSON.stringify(params),
      FIXTURE_SHOW_PARAMS: 1,
      FIXTURE_TRACE_PIDS: 1,
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_HANDLER_MS: 200,
      FIXTURE_CONCURRENCY: 1,
      FIXTURE_HOLD_IDS: '1,501',
      FIXTURE_HOLD_FILE: hold,
    };
    const a = startFixture({ ...host, FIXTURE_STARTED_BY: 'host-a' });
    await a.waitFor(/^PARAMS role=handler/m);
    const b = startFixture(host);
    await b.waitFor(/^PARAMS role=handler/m);
    // A third host, with other params, while the run is active on both.
    const other = { tag: 'y', n: 2 };
    const c = await startFixture({
      ...host,
      FIXTURE_PARAMS: JSON.stringify(other),
    }).exited;
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();
    expect(c.code).toBe(1);
    expect(c.summary).toBeUndefined();
    expect(c.refused?.message).toMatch(
      /^Job "items" was not started: run [0-9a-f-]+ is active with params \{"n":1,"tag":"x"\}, and this run\(\) has params \{"n":2,"tag":"y"\}\./,
    );
    // It loaded, handled and counted nothing.
    expect(paramsLines(c.output)).toEqual([]);
    expect(workerPids(c.output)).toEqual([]);
    writeFileSync(hold, '');

    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    for (const r of [ra, rb]) {
      expect(r.code).toBe(0);
      expect(r.summary).toMatchObject({
        status: 'completed',
        ids: ROWS,
        ranges: { completed: ROWS / 500, retried: 0, dead: 0 },
      });
    }
    const runId = ra.summary!.runId;
    expect(rb.summary!.runId).toBe(runId);
    expect(ra.summary!.host.ids + rb.summary!.host.ids).toBe(ROWS);
    expect(rb.summary!.host.ids).toBeGreaterThan(0);
    expect(await pgCounts(t)).toEqual({
      total: ROWS,
      once: ROWS,
      missed: [],
      duplicated: [],
    });

    const seen = [ra, rb].map((r) => paramsLines(r.output));
    // Every role of every process saw exactly the params run() was given, for this run.
    for (const line of seen.flat()) {
      expect(line.params).toEqual(params);
      expect(line.run).toBe(runId);
    }
    const primaries = [a.child.pid!, b.child.pid!];
    const pidsOf = (lines: ParamsLine[], role: string) =>
      sorted(lines.filter((l) => l.role === role).map((l) => l.pid));
    for (const [i, r] of [ra, rb].entries()) {
      const workers = sorted(workerPids(r.output));
      expect(workers).toHaveLength(2);
      expect(workers).not.toContain(primaries[i]);
      // Each host's primary loaded with the params, and each of its worker processes handled with them.
      expect(pidsOf(seen[i], 'loader')).toEqual([primaries[i]]);
      expect(pidsOf(seen[i], 'handler')).toEqual(workers);
    }
    // @RangeTotal runs once per run, in the primary that started it.
    expect(pidsOf(seen.flat(), 'total')).toEqual([primaries[0]]);
    console.log(
      `params on 2 hosts: ${ROWS} rows once, per host ${ra.summary!.host.ids} / ${rb.summary!.host.ids}; ` +
        `${seen.flat().length} PARAMS lines all ${JSON.stringify(params)}; the third host refused in ${c.output.length} chars of output`,
    );
  });

  const history = async (store: 'memory' | 'Redis') => {
    const t = await table();
    const key = prefix('history');
    const run = startFixture({
      ...env(t),
      FIXTURE_SCENARIO: 'history',
      ...(store === 'Redis' && { REDIS_URL, FIXTURE_PREFIX: key }),
    });
    const result = await run.exited;
    // The third run failed: the app exits 1, as report() makes it.
    expect(result.code).toBe(1);
    const [first, second] = result.summaries;
    expect(result.summaries).toHaveLength(2);
    expect(first).toMatchObject({ status: 'completed', ids: ROWS });
    expect(second.status).toBe('stopped');
    expect(second.ids).toBeGreaterThanOrEqual(2000);
    expect(second.ids).toBeLessThan(ROWS);
    const failed = result.failed!.summary;
    expect(failed.status).toBe('failed');

    const records = jsonLine<RunRecord[]>(result.output, 'HISTORY');
    expect(records.map((r) => r.status)).toEqual([
      'failed',
      'cancelled',
      'completed',
    ]);
    expect(records.map((r) => r.runId)).toEqual([
      failed.runId,
      second.runId,
      first.runId,
    ]);
    expect(records.map((r) => r.params)).toEqual([
      { tag: 'third', bad: 'not-array' },
      { tag: 'second', handlerMs: 50 },
      { tag: 'first' },
    ]);
    for (const r of records) {
      expect(r).toMatchObject({
        job: 'items',
        startedBy: 'e2e-history',
        deadLetters: 0,
      });
      expect(r.host).toContain(`:${run.child.pid}:`);
      expect(r.endedAt).toBeGreaterThanOrEqual(r.startedAt!);
    }
    expect(records[0].endedAt).toBeGreaterThanOrEqual(records[1].endedAt);
    expect(records[1].endedAt).toBeGreaterThanOrEqual(records[2].endedAt);
    expect(records[0].error).toMatch(
      /^Job "items": the range loader returned 'oops', which is neither an array of ids nor a range object/,
    );
    expect(records[0].error).toBe(failed.error);
    expect(records[1].error).toBeUndefined();
    expect(records[2].error).toBeUndefined();
    expect(records.map((r) => r.summary)).toEqual([failed, second, first]);
    // The first run handled every row; the cancelled one at least as many again as it counted.
    const counts = await pgCounts(t);
    expect(counts.missed).toEqual([]);
    expect(counts.duplicated.length).toBeGreaterThanOrEqual(second.ids);
    return { key, records, result };
  };

  it('keeps a completed, a cancelled and a failed run in the history, newest first (memory store)', async () => {
    const { records } = await history('memory');
    console.log(
      `history, memory store: ${records.map((r) => `${r.status} (${r.summary.ids} ids)`).join(', ')}`,
    );
  });

  it('keeps them in Redis too, and the CLI lists them (history items --json)', async () => {
    const { key, records } = await history('Redis');
    const cli = await runCli([
      'history',
      'items',
      '--json',
      '--redis',
      REDIS_URL,
      '--prefix',
      key,
    ]);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.out)).toEqual(records);
    console.log(
      `history, Redis: ${records.map((r) => `${r.status} (${r.summary.ids} ids)`).join(', ')}; the CLI lists the same ${records.length} records`,
    );
  });

  it('retries only the ids a range reports failed (RangeItemsFailedError) and dead-letters just those', async () => {
    const t = await table();
    const failing = [5001, 5500, 6000];
    const result: FixtureResult = await startFixture({
      ...env(t),
      // Fixed at 1,000 (the adaptive size could grow before the loader reached 5001): the range 5001..6000 below.
      FIXTURE_RANGE_SIZE: 1000,
      FIXTURE_PARTIAL_IDS: failing.join(','),
      FIXTURE_MAX_ATTEMPTS: 2,
      FIXTURE_PRINT_DEAD: 1,
    }).exited;
    expect(result.code).toBe(0);
    // The range 5001..6000 counts its 997 ids as a range that ended done; its 3 failed ids, a range of their own, dead.
    expect(result.summary).toMatchObject({
      status: 'completed',
      ids: ROWS - 3,
      ranges: { completed: ROWS / 1000, retried: 1, dead: 1 },
    });
    // Every row handled exactly once, at attempt 1, but the 3 that always fail: never.
    const rows = await pgQuery<{ processed: number; max_attempt: number }>(
      `SELECT processed, max_attempt, COUNT(*)::int AS n FROM ${t} GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    expect(rows).toEqual([
      { processed: 0, max_attempt: 0, n: 3 },
      { processed: 1, max_attempt: 1, n: ROWS - 3 },
    ]);
    const unhandled = await pgQuery<{ id: string }>(
      `SELECT id FROM ${t} WHERE processed = 0 ORDER BY id`,
    );
    expect(unhandled.map((r) => Number(r.id))).toEqual(failing);
    const inRange = await pgQuery<{ n: number }>(
      `SELECT COUNT(*)::int AS n FROM ${t} WHERE id BETWEEN 5001 AND 6000 AND processed = 1`,
    );
    expect(inRange[0].n).toBe(997);

    const dead = jsonLine<DeadLetter[]>(result.output, 'DEAD');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      runId: result.summary!.runId,
      range: { ids: failing },
      attempts: 2,
      error: { message: '3 ids of the range failed: bad items at 5001' },
    });
    console.log(
      `partial failure: ${result.summary!.ids} ids done, rows ${JSON.stringify(rows)}, dead letter ${JSON.stringify(dead[0].range)} after ${dead[0].attempts} attempts`,
    );
  });

  it('makes one run span and a child span per range in the workers, across the IPC hop (OpenTelemetry)', async () => {
    const t = await table();
    const dir = mkdtempSync(join(tmpdir(), 'pw-otel-'));
    dirs.push(dir);
    const run = startFixture({
      ...env(t),
      FIXTURE_OTEL: dir,
      // 40 ranges of 50 ms: both workers take some.
      FIXTURE_RANGE_SIZE: 500,
      FIXTURE_HANDLER_MS: 50,
    });
    const result = await run.exited;
    expect(result.code).toBe(0);
    const summary = result.summary!;
    expect(summary).toMatchObject({ status: 'completed', ids: ROWS });

    const files = readdirSync(dir).map(
      (f) =>
        JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
          pid: number;
          worker: boolean;
          spans: WrittenSpan[];
        },
    );
    const primary = run.child.pid!;
    expect(files.filter((f) => !f.worker).map((f) => f.pid)).toEqual([primary]);
    const spans = files.flatMap((f) =>
      f.spans.map((s) => ({ ...s, pid: f.pid })),
    );
    const runSpans = spans.filter(
      (s) => s.name === 'parallel-worker run items',
    );
    expect(runSpans).toHaveLength(1);
    const [runSpan] = runSpans;
    expect(runSpan.pid).toBe(primary);
    expect(runSpan.parentSpanId).toBeNull();
    expect(runSpan.attributes).toMatchObject({
      'parallel_worker.job': 'items',
      'parallel_worker.run_id': summary.runId,
      'parallel_worker.status': 'completed',
      'parallel_worker.ids': ROWS,
      'parallel_worker.ranges.completed': summary.ranges.completed,
    });

    const ranges = spans.filter(
      (s) => s.name === 'parallel-worker range items',
    );
    expect(spans).toHaveLength(ranges.length + 1);
    expect(ranges).toHaveLength(
      summary.ranges.completed + summary.ranges.retried + summary.ranges.dead,
    );
    expect(ranges).toHaveLength(ROWS / 500);
    for (const s of ranges) {
      expect(s.traceId).toBe(runSpan.traceId);
      expect(s.parentSpanId).toBe(runSpan.spanId);
      expect(s.pid).not.toBe(primary);
      expect(s.status.code).toBe(0);
      const a = s.attributes;
      expect(a).toMatchObject({
        'parallel_worker.job': 'items',
        'parallel_worker.run_id': summary.runId,
        'parallel_worker.attempt': 1,
        'parallel_worker.outcome': 'completed',
      });
      expect(a['parallel_worker.worker_id']).toMatch(/^w-[0-9a-f]+$/);
      expect(a['parallel_worker.ids']).toBe(
        Number(a['parallel_worker.last_id']) -
          Number(a['parallel_worker.first_id']) +
          1,
      );
    }
    // The ranges tile the table: 1..500, 501..1000, … with one token each.
    const firsts = ranges
      .map((s) => Number(s.attributes['parallel_worker.first_id']))
      .sort((x, y) => x - y);
    expect(firsts).toEqual(
      Array.from({ length: ROWS / 500 }, (_, i) => i * 500 + 1),
    );
    expect(
      new Set(ranges.map((s) => s.attributes['parallel_worker.token'])).size,
    ).toBe(ranges.length);
    const pids = sorted(ranges.map((s) => s.pid));
    expect(pids.length).toBeGreaterThanOrEqual(2);
    // One worker id per worker process.
    for (const pid of pids)
      expect(
        new Set(
          ranges
            .filter((s) => s.pid === pid)
            .map((s) => s.attributes['parallel_worker.worker_id']),
        ).size,
      ).toBe(1);
    console.log(
      `spans: 1 run span, ${ranges.length} range spans in trace ${runSpan.traceId} from worker pids ${pids
        .map((p) => `${p} (${ranges.filter((s) => s.pid === p).length})`)
        .join(', ')}`,
    );
  });
});
