import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { Client } from 'pg';
import type { RunRecord, RunSummary } from '../../lib';
import {
  type FixtureResult,
  type FixtureRun,
  startFixture,
} from '../support/fixture';
import {
  createMysqlItems,
  dropMysqlTable,
  MYSQL_URL,
  mysqlQuery,
} from '../support/mysql';
import { type PgReplica, startPgReplica } from '../support/pg-replica';
import { sleep, waitUntil } from '../support/processes';
import { REDIS_URL } from '../support/redis-server';

/**
 * Database-health holds (DESIGN 3b) on real cluster workers: the fixture app
 * with the `health` option, its job's table on a PostgreSQL primary of the
 * test's own with a streaming standby (or on MariaDB), each hold caused for
 * real (replay paused, a transaction left open, a slow VACUUM, busy threads).
 *
 * Every handler call prints when it began (START). A hold is a span
 * [since, until] of the store (status().hold, and the RunHeld event of the
 * host that put it: [at, at + holdMs]); spans closer than MERGE_GAP_MS are
 * one held period. The rule checked: no handler starts in a held period
 * (nor before the condition that caused it ended: the period must last that
 * long), except ranges handed out before it began. Those start soon after
 * its start, as the workers work through what they hold: on the host that
 * put the hold (its gate closes at once) the range waiting in each worker's
 * backlog after the running one, within 2 handler times; on another host
 * also the ranges it had leased but not yet sent, within 3 handler times;
 * SLACK_MS more for scheduling. At most WORKERS (backlogs) + PREFETCH
 * (leased, not sent) per host start in that grace.
 */

jest.setTimeout(60_000);

const HANDLER_MS = 100;
const INTERVAL_MS = 300;
/** The longest a re-ask at a hold's end may take here (one indicator query, a few ms on this machine; a bound, not a timing). */
const RECHECK_MS = 200;
const WORKERS = 2;
/** The fixture's default prefetch: workers x concurrency. */
const PREFETCH = WORKERS;
/** Scheduling on a loaded 2-core machine. */
const SLACK_MS = 150;
/** Consecutive holds of one unhealthy spell: the next is put when the last ends, after one check. */
const MERGE_GAP_MS = 250;
/** How long each case keeps its condition once the run is held. */
const KEEP_HELD_MS = 1500;

interface Start {
  pid: number;
  first: number;
  at: number;
}
interface HeldLine {
  pid: number;
  at: number;
  indicator: string;
  reason: string;
  holdMs: number;
}
interface StatusLine {
  at: number;
  state: string;
  hold?: { reason: string; indicator: string; since: number; until: number };
  heldMs?: number;
}
interface Period {
  since: number;
  until: number;
  /** Index of the host that put its first hold. */
  holder: number;
  reasons: string[];
}

const lines = <T>(out: string, tag: string): T[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith(`${tag} `))
    .map((l) => JSON.parse(l.slice(tag.length + 1)) as T);
const startsOf = (out: string): Start[] =>
  [...out.matchAll(/^START pid=(\d+) first=(\d+) at=(\d+)$/gm)].map((m) => ({
    pid: Number(m[1]),
    first: Number(m[2]),
    at: Number(m[3]),
  }));
const heldOf = (out: string) => lines<HeldLine>(out, 'EVENT RunHeld');
const statusOf = (out: string) => lines<StatusLine>(out, 'STATUS');

/** The held periods all hosts saw or put, merged. */
function heldPeriods(outputs: string[]): Period[] {
  const spans: Period[] = [];
  outputs.forEach((out, host) => {
    for (const e of heldOf(out))
      spans.push({
        since: e.at,
        until: e.at + e.holdMs,
        holder: host,
        reasons: [e.reason],
      });
    for (const s of statusOf(out))
      if (s.hold)
        spans.push({
          since: s.hold.since,
          until: s.hold.until,
          holder: -1,
          reasons: [s.hold.reason],
        });
  });
  spans.sort((a, b) => a.since - b.since);
  const merged: Period[] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && s.since <= last.until + MERGE_GAP_MS) {
      last.until = Math.max(last.until, s.until);
      if (last.holder < 0) last.holder = s.holder;
      for (const r of s.reasons)
        if (!last.reasons.includes(r)) last.reasons.push(r);
    } else merged.push({ ...s, reasons: [...s.reasons] });
  }
  return merged;
}

interface Checked {
  period: Period;
  /** Handler starts per host inside the grace of the period's start. */
  inGrace: number[];
  /** From the end of the condition (as the test ended it) to the end of the held period. */
  heldAfterConditionMs: number;
  /** From the period's end to the first handler start after it (the run going on again). */
  resumedAfterMs: number;
  /** Breaches of the rule, one sentence each. */
  violations: string[];
}

/**
 * Checks the rule above for the held period that `reason` started at or
 * after `conditionFrom`, the test having ended its condition at
 * `conditionEnd`, handlers taking `handlerMs`; returns what it measured and
 * the breaches it found.
 */
function checkHeld(
  outputs: string[],
  reason: RegExp,
  conditionFrom: number,
  conditionEnd: number,
  handlerMs = HANDLER_MS,
): Checked {
  const periods = heldPeriods(outputs);
  const period = periods.find(
    (p) => p.until >= conditionFrom && p.reasons.some((r) => reason.test(r)),
  );
  if (!period)
    throw new Error(
      `no hold for ${reason}; holds: ${JSON.stringify(periods)}; output:\n${outputs.join('\n---\n').slice(-4000)}`,
    );
  const violations: string[] = [];
  const at = (t: number) => `${t - period.since} ms after the hold began`;
  // Held from its start until the condition ended (and until the hold's own end). As a hold ends, the host that put
  // it asks once more and holds again if the database is still unhealthy: the store shows no hold for that one
  // indicator call (RECHECK_MS at most), and no range may start in it either (checked below, up to the condition's end).
  if (period.until < conditionEnd - RECHECK_MS)
    violations.push(
      `the held period ended ${conditionEnd - period.until} ms before the condition did`,
    );
  const heldUntil = Math.max(period.until, conditionEnd);
  const inGrace: number[] = [];
  let firstAfter = Infinity;
  outputs.forEach((out, host) => {
    const grace = (host === period.holder ? 2 : 3) * handlerMs + SLACK_MS;
    const starts = startsOf(out);
    for (const s of starts)
      if (s.at > period.since + grace && s.at < heldUntil)
        violations.push(
          `host ${host} started the range at ${s.first} ${at(s.at)} (grace ${grace} ms)`,
        );
    const early = starts.filter(
      (s) => s.at > period.since && s.at <= period.since + grace,
    );
    if (early.length > WORKERS + PREFETCH)
      violations.push(
        `host ${host} started ${early.length} ranges within the grace (${early.map((s) => at(s.at)).join(', ')}), more than it can have had handed out before (${WORKERS + PREFETCH})`,
      );
    inGrace.push(early.length);
    for (const s of starts)
      if (s.at >= heldUntil) firstAfter = Math.min(firstAfter, s.at);
  });
  // The run went on by itself, soon after the condition and the hold ended.
  expect(period.until).toBeLessThan(conditionEnd + 3000);
  expect(firstAfter).toBeLessThan(period.until + 2000);
  return {
    period: { ...period, reasons: period.reasons.slice(0, 2) },
    heldAfterConditionMs: period.until - conditionEnd,
    inGrace,
    resumedAfterMs: firstAfter - period.until,
    violations,
  };
}

/** The fixture's own summary and history record: completed, every row, the hold in both. */
function checkSummary(result: FixtureResult, rows: number): RunSummary {
  expect(result.code).toBe(0);
  const summary = result.summary as RunSummary;
  expect(summary).toMatchObject({ status: 'completed', ids: rows });
  expect(summary.heldMs).toBeGreaterThan(0);
  const [record] = lines<RunRecord[]>(result.output, 'HISTORY')[0];
  expect(record).toMatchObject({
    runId: summary.runId,
    status: 'completed',
    summary: { heldMs: summary.heldMs, ids: rows },
    // The record says why: the run's last hold, its reason and indicator.
    lastHold: {
      reason: expect.stringMatching(/\S/),
      indicator: expect.stringMatching(/^(postgres|mysql)Health$/),
      since: expect.any(Number),
      until: expect.any(Number),
    },
  });
  return summary;
}

const pgQueryOn = async <T = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> => {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
};

const measured: Record<string, unknown> = {};
afterAll(() => {
  // What each case measured, for the report.
  process.stdout.write(`HEALTH_E2E ${JSON.stringify(measured)}\n`);
});

describe('database-health holds on a PostgreSQL streaming replica (e2e)', () => {
  let replica: PgReplica;

  beforeAll(async () => {
    replica = await startPgReplica();
    await pgQueryOn(
      replica.primaryUrl,
      'CREATE TABLE beat (id serial PRIMARY KEY, at timestamptz DEFAULT now())',
    );
  }, 30_000);
  afterAll(async () => {
    await replica?.stop();
  });

  /** A table of `rows` rows on the test's primary (`payload` padded so that a VACUUM has pages to scan). */
  const createItems = async (rows: number): Promise<string> => {
    const table = `items_${randomBytes(4).toString('hex')}`;
    await pgQueryOn(
      replica.primaryUrl,
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, payload text NOT NULL, processed int NOT NULL DEFAULT 0, max_attempt int NOT NULL DEFAULT 0);
       INSERT INTO ${table} (payload) SELECT repeat('x', 200) FROM generate_series(1, ${rows})`,
    );
    return table;
  };
  const counts = async (table: string) =>
    (
      await pgQueryOn<{ n: number; once: number; lost: number }>(
        replica.primaryUrl,
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE processed = 1)::int AS once,
           count(*) FILTER (WHERE processed = 0)::int AS lost FROM ${table}`,
      )
    )[0];

  /** One host of the fixture on that table, postgresHealth watching the primary with all three checks. */
  const host = (table: string, extra: Record<string, string | number> = {}) =>
    startFixture({
      DATABASE_URL: replica.primaryUrl,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-health-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: WORKERS,
      FIXTURE_RANGE_SIZE: 20,
      FIXTURE_HANDLER_MS: HANDLER_MS,
      FIXTURE_PRINT_STARTS: 1,
      FIXTURE_STATUS_MS: 100,
      FIXTURE_PRINT_HISTORY: 1,
      FIXTURE_HEALTH_PG: replica.primaryUrl,
      FIXTURE_HEALTH_TABLES: table,
      FIXTURE_MAX_LAG_MS: 1000,
      FIXTURE_MAX_TX_AGE_MS: 1000,
      FIXTURE_HEALTH_INTERVAL_MS: INTERVAL_MS,
      ...extra,
    });

  const startsSeen = (run: FixtureRun, n: number) =>
    waitUntil(
      () => startsOf(run.output()).length >= n,
      20_000,
      `${n} handler starts`,
    );

  /** status() as the fixture printed it: the hold with its reason, the indicator and its span. */
  const expectStatusHold = (out: string, reason: RegExp) =>
    expect(statusOf(out).map((s) => s.hold)).toContainEqual({
      reason: expect.stringMatching(reason),
      indicator: 'postgresHealth',
      since: expect.any(Number),
      until: expect.any(Number),
    });

  it('(a) holds while the standby does not replay, goes on once it replays', async () => {
    const rows = 2000;
    const table = await createItems(rows);
    const standby = new Client({ connectionString: replica.standbyUrl });
    await standby.connect();
    // Other writes to the primary go on all along (another app), as the handler's do until the hold.
    let writing = true;
    const beats = (async () => {
      while (writing) {
        await pgQueryOn(replica.primaryUrl, 'INSERT INTO beat DEFAULT VALUES');
        await sleep(100);
      }
    })();
    try {
      const run = host(table);
      await startsSeen(run, 10);
      const paused = Date.now();
      await standby.query('SELECT pg_wal_replay_pause()');
      const reason = /replay lag \d+\.\d s > maxReplicationLagMs 1000/;
      await run.waitFor(/^EVENT RunHeld .*replay lag/m, 15_000);
      const heldAfterMs = Date.now() - paused;
      await sleep(KEEP_HELD_MS);
      const resumed = Date.now();
      await standby.query('SELECT pg_wal_replay_resume()');
      const result = await run.exited;
      const summary = checkSummary(result, rows);
      const checked = checkHeld([result.output], reason, paused, resumed);
      expect(checked.violations).toEqual([]);
      expectStatusHold(result.output, reason);
      expect(await counts(table)).toEqual({ n: rows, once: rows, lost: 0 });
      // The hold covers at least the time from its start until replay resumed.
      expect(summary.heldMs).toBeGreaterThanOrEqual(
        resumed - checked.period.since - MERGE_GAP_MS,
      );
      measured.a = {
        heldAfterPauseMs: heldAfterMs,
        ...checked,
        heldMs: summary.heldMs,
        durationMs: summary.durationMs,
      };
    } finally {
      writing = false;
      await beats;
      await standby.query('SELECT pg_wal_replay_resume()');
      await standby.end();
    }
  });

  it('(b) holds while a transaction stays open past maxTransactionAgeMs', async () => {
    const rows = 1600;
    const table = await createItems(rows);
    const open = new Client({ connectionString: replica.primaryUrl });
    await open.connect();
    try {
      await open.query("SET application_name = 'report'");
      const run = host(table);
      await startsSeen(run, 10);
      const began = Date.now();
      await open.query('BEGIN');
      await open.query('SELECT txid_current()');
      const pid = (open as unknown as { processID: number }).processID;
      const reason = new RegExp(
        `transaction of pid ${pid} \\(user postgres, application "report", idle in transaction\\) open \\d+\\.\\d s > maxTransactionAgeMs 1000`,
      );
      await run.waitFor(/^EVENT RunHeld .*transaction of pid/m, 15_000);
      await sleep(KEEP_HELD_MS);
      const committed = Date.now();
      await open.query('COMMIT');
      const result = await run.exited;
      const summary = checkSummary(result, rows);
      const checked = checkHeld([result.output], reason, began, committed);
      expect(checked.violations).toEqual([]);
      expectStatusHold(result.output, reason);
      expect(await counts(table)).toEqual({ n: rows, once: rows, lost: 0 });
      expect(summary.heldMs).toBeGreaterThanOrEqual(
        committed - checked.period.since - MERGE_GAP_MS,
      );
      measured.b = { ...checked, heldMs: summary.heldMs };
    } finally {
      await open.end();
    }
  });

  it("(c) holds while a VACUUM of the job's table runs", async () => {
    const rows = 1600;
    const table = await createItems(rows);
    const vacuumer = new Client({ connectionString: replica.primaryUrl });
    await vacuumer.connect();
    const pid = (vacuumer as unknown as { processID: number }).processID;
    try {
      // A vacuum that sleeps after every page: seconds on this table, cancelled once the run held long enough.
      await vacuumer.query(
        'SET vacuum_cost_delay = 100; SET vacuum_cost_limit = 1',
      );
      const run = host(table);
      await startsSeen(run, 10);
      const began = Date.now();
      const vacuum = vacuumer
        .query(`VACUUM ${table}`)
        .then(() => 'finished')
        .catch((e: Error) => e.message);
      const reason = new RegExp(`VACUUM of ${table} running \\(pid ${pid}, `);
      await run.waitFor(/^EVENT RunHeld .*VACUUM of/m, 15_000);
      await sleep(KEEP_HELD_MS);
      const cancelled = Date.now();
      await pgQueryOn(replica.primaryUrl, 'SELECT pg_cancel_backend($1)', [
        pid,
      ]);
      // Cancelled mid-scan: it was still running all the while it was held.
      expect(await vacuum).toMatch(/canceling statement/);
      const result = await run.exited;
      const summary = checkSummary(result, rows);
      const checked = checkHeld([result.output], reason, began, cancelled);
      expect(checked.violations).toEqual([]);
      expectStatusHold(result.output, reason);
      expect(await counts(table)).toEqual({ n: rows, once: rows, lost: 0 });
      measured.c = { ...checked, heldMs: summary.heldMs };
    } finally {
      await vacuumer.end();
    }
  });

  it('(e) two hosts on Redis: one hold stops both; one host at a time asks the indicator', async () => {
    // Quicker handlers: a host that went on handing out after the hold began would start many ranges.
    const handlerMs = 20;
    const rows = 8000;
    const table = await createItems(rows);
    const dir = mkdtempSync(join(tmpdir(), 'pw-health-'));
    const log = join(dir, 'asks.log');
    const open = new Client({ connectionString: replica.primaryUrl });
    await open.connect();
    try {
      const env = {
        FIXTURE_PREFIX: `pw-health-${randomBytes(4).toString('hex')}`,
        FIXTURE_HEALTH_LOG: log,
        FIXTURE_HANDLER_MS: handlerMs,
      };
      const hosts = [host(table, env), host(table, env)];
      await Promise.all(hosts.map((h) => startsSeen(h, 4)));
      const began = Date.now();
      await open.query('BEGIN');
      await open.query('SELECT txid_current()');
      const pid = (open as unknown as { processID: number }).processID;
      const reason = new RegExp(
        `transaction of pid ${pid} .* > maxTransactionAgeMs 1000`,
      );
      await waitUntil(
        () => hosts.some((h) => /^EVENT RunHeld /m.test(h.output())),
        15_000,
        'a hold',
      );
      await sleep(KEEP_HELD_MS);
      const committed = Date.now();
      await open.query('COMMIT');
      const results = await Promise.all(hosts.map((h) => h.exited));
      const summaries = results.map((r) => checkSummary(r, rows));
      expect(new Set(summaries.map((s) => s.runId)).size).toBe(1);
      const outputs = results.map((r) => r.output);
      // The indicator's checks, as each host logged them: never two at once.
      const asks = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([p, start, end, state]) => ({
          pid: Number(p),
          start: Number(start),
          end: Number(end),
          state,
        }))
        .sort((x, y) => x.start - y.start);
      const primaries = hosts.map((h) => h.child.pid);
      expect(new Set(asks.map((a) => a.pid))).toEqual(
        new Set(asks.map((a) => a.pid).filter((p) => primaries.includes(p))),
      );
      const overlapping = asks.filter(
        (a, i) => i > 0 && a.start < asks[i - 1].end,
      );
      const checked = checkHeld(outputs, reason, began, committed, handlerMs);
      // Both hosts handled ranges before and after the hold, and both saw it in status().
      for (const out of outputs) {
        expectStatusHold(out, reason);
        expect(startsOf(out).some((s) => s.at < checked.period.since)).toBe(
          true,
        );
        expect(startsOf(out).some((s) => s.at >= checked.period.until)).toBe(
          true,
        );
      }
      expect(await counts(table)).toEqual({ n: rows, once: rows, lost: 0 });

      // About one check per interval for the whole run, not one per host per interval.
      const from = Math.min(...asks.map((a) => a.start));
      const to = Math.max(...asks.map((a) => a.end));
      const holds = outputs.flatMap(heldOf).length;
      measured.e = {
        ...checked,
        heldMs: summaries.map((s) => s.heldMs),
        asks: asks.length,
        asksByHost: primaries.map(
          (p) => asks.filter((a) => a.pid === p).length,
        ),
        askSpanMs: to - from,
        holds,
        overlapping: overlapping.length,
      };
      expect({
        violations: checked.violations,
        overlapping: overlapping.map(
          (a) =>
            `host pid ${a.pid} asked ${a.start - began} ms in, during another host's check`,
        ),
      }).toEqual({ violations: [], overlapping: [] });
      expect(asks.length).toBeLessThanOrEqual(
        Math.ceil((to - from) / INTERVAL_MS) + holds + 2,
      );
    } finally {
      await open.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('(f) an indicator that hangs and one that throws: unknown, logged, the run completes', async () => {
    const rows = 600;
    const table = await createItems(rows);
    const result = await host(table, {
      FIXTURE_HEALTH_PG: '',
      FIXTURE_HEALTH_BAD: 'hang,throw',
      FIXTURE_HEALTH_TIMEOUT_MS: 200,
    }).exited;
    expect(result.code).toBe(0);
    const summary = result.summary as RunSummary;
    expect(summary).toMatchObject({ status: 'completed', ids: rows });
    expect(summary.heldMs).toBe(0);
    expect(heldOf(result.output)).toEqual([]);
    expect(result.output).toContain(
      'health indicator bad-hang could not tell (no answer within healthTimeoutMs (200 ms)); counted as unknown, so handing out goes on',
    );
    expect(result.output).toContain(
      'health indicator bad-throw could not tell (the health endpoint answered 503); counted as unknown',
    );
    const unknown = lines<{ indicator: string }>(
      result.output,
      'EVENT HealthUnknown',
    );
    expect(new Set(unknown.map((u) => u.indicator))).toEqual(
      new Set(['bad-hang', 'bad-throw']),
    );
    expect(await counts(table)).toEqual({ n: rows, once: rows, lost: 0 });
    measured.f = {
      unknownEvents: unknown.length,
      durationMs: summary.durationMs,
    };
  });
});

describe('database-health holds on MariaDB (e2e)', () => {
  const SLEEPERS = 12;
  const MAX_THREADS = 6;
  let table: string;
  afterAll(async () => {
    if (table) await dropMysqlTable(table);
  });

  it('(d) holds while Threads_running is above maxThreadsRunning, goes on after', async () => {
    const rows = 1600;
    table = await createMysqlItems(rows);
    const run = startFixture({
      MYSQL_URL,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-health-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: WORKERS,
      FIXTURE_RANGE_SIZE: 20,
      FIXTURE_HANDLER_MS: HANDLER_MS,
      FIXTURE_PRINT_STARTS: 1,
      FIXTURE_STATUS_MS: 100,
      FIXTURE_PRINT_HISTORY: 1,
      FIXTURE_HEALTH_MYSQL: MYSQL_URL,
      FIXTURE_MAX_THREADS: MAX_THREADS,
      FIXTURE_HEALTH_INTERVAL_MS: INTERVAL_MS,
    });
    const sleepers = await Promise.all(
      Array.from({ length: SLEEPERS }, () =>
        mysql.createConnection({ uri: MYSQL_URL }),
      ),
    );
    try {
      await waitUntil(
        () => startsOf(run.output()).length >= 10,
        20_000,
        '10 handler starts',
      );
      const began = Date.now();
      const sleeping = Promise.all(
        sleepers.map((c) => c.query('SELECT SLEEP(3)')),
      );
      await run.waitFor(/^EVENT RunHeld .*Threads_running/m, 5_000);
      await sleeping;
      const ended = Date.now();
      const result = await run.exited;
      const summary = checkSummary(result, rows);
      const reason = new RegExp(
        `^Threads_running \\d+ > maxThreadsRunning ${MAX_THREADS}$`,
      );
      // The sleepers' end, as the test saw it, is a little after the server's.
      const checked = checkHeld([result.output], reason, began, ended - 50);
      expect(checked.violations).toEqual([]);
      expect(statusOf(result.output).map((s) => s.hold)).toContainEqual({
        reason: expect.stringMatching(reason),
        indicator: 'mysqlHealth',
        since: expect.any(Number),
        until: expect.any(Number),
      });
      const [row] = await mysqlQuery<{ n: number; once: number }>(
        `SELECT COUNT(*) AS n, SUM(processed = 1) AS once FROM ${table}`,
      );
      expect({ n: Number(row.n), once: Number(row.once) }).toEqual({
        n: rows,
        once: rows,
      });
      measured.d = { ...checked, heldMs: summary.heldMs };
    } finally {
      await Promise.all(sleepers.map((c) => c.end()));
    }
  });
});
