/**
 * Which SQLite driver the SQL store uses: `node:sqlite` against `better-sqlite3`
 * on the store's own workload, a claim, a commit and a complete per cycle,
 * each one `BEGIN IMMEDIATE` transaction, WAL, synchronous=NORMAL,
 * busy_timeout, on one file shared by 1 and by 3 processes.
 *
 * Run on its own: `npx tsc -p bench/tsconfig.json && node dist-bench/bench/sqlite-driver.js`.
 * `SQLITE_BENCH_RUNS` (default 5) rounds, `SQLITE_BENCH_CYCLES` (default 3000)
 * cycles per process per round; prints the medians.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Driver = 'node:sqlite' | 'better-sqlite3';

/** The calls both drivers share (their statements have `run`, `get`, `all`). */
interface Connection {
  exec(sql: string): void;
  prepare(sql: string): {
    run(...params: unknown[]): { changes: number | bigint };
    get(...params: unknown[]): unknown;
  };
  close(): void;
}

const load = createRequire(__filename);

function open(driver: Driver, file: string): Connection {
  if (driver === 'node:sqlite') {
    const { DatabaseSync } = load('node:sqlite');
    return new DatabaseSync(file, { timeout: 5000 });
  }
  const Database = load('better-sqlite3');
  return new Database(file, { timeout: 5000 });
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (job TEXT PRIMARY KEY, run_id TEXT, state TEXT, control TEXT, cursor TEXT,
  token INTEGER NOT NULL DEFAULT 0, ids INTEGER NOT NULL DEFAULT 0, completed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS leases (job TEXT NOT NULL, token INTEGER NOT NULL, run_id TEXT, owner TEXT, attempt INTEGER,
  deadline INTEGER, n INTEGER, range TEXT, PRIMARY KEY (job, token));
CREATE INDEX IF NOT EXISTS leases_deadline ON leases (job, deadline);
CREATE TABLE IF NOT EXISTS pending (job TEXT NOT NULL, id INTEGER NOT NULL, due INTEGER, range TEXT, PRIMARY KEY (job, id));
CREATE INDEX IF NOT EXISTS pending_due ON pending (job, due);
CREATE TABLE IF NOT EXISTS hosts (job TEXT NOT NULL, owner TEXT NOT NULL, until INTEGER, PRIMARY KEY (job, owner));
`;

/** Runs `cycles` claim + commit + complete cycles of 4 ranges of 100 ids; returns the ms taken. */
function cycles(driver: Driver, file: string, owner: string, count: number) {
  const db = open(driver, file);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  const jobRow = db.prepare(
    'SELECT state, control, cursor FROM jobs WHERE job = ?',
  );
  const present = db.prepare(
    'INSERT INTO hosts (job, owner, until) VALUES (?, ?, ?) ON CONFLICT (job, owner) DO UPDATE SET until = excluded.until',
  );
  const expired = db.prepare(
    'SELECT token FROM leases WHERE job = ? AND deadline <= ? LIMIT 1',
  );
  const due = db.prepare(
    'SELECT id FROM pending WHERE job = ? AND due <= ? ORDER BY due LIMIT 1',
  );
  const moveCursor = db.prepare(
    'UPDATE jobs SET cursor = ? WHERE job = ? AND cursor IS ? AND state = ?',
  );
  const tokens = db.prepare(
    'UPDATE jobs SET token = max(token, ?) + ? WHERE job = ? RETURNING token',
  );
  const insertLease = db.prepare(
    'INSERT INTO leases (job, token, run_id, owner, attempt, deadline, n, range) VALUES (?, ?, ?, ?, 1, ?, ?, ?)',
  );
  const takeLease = db.prepare(
    'DELETE FROM leases WHERE job = ? AND token = ? AND owner = ? RETURNING n, run_id',
  );
  const addCounts = db.prepare(
    'UPDATE jobs SET ids = ids + ?, completed = completed + ? WHERE job = ?',
  );
  const tx = <T>(fn: () => T): T => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
  };
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    // Claim: the job's row, presence, an expired lease, a due retry, else load after the cursor.
    const cursor = tx(() => {
      const now = Date.now();
      const row = jobRow.get('items') as { cursor: string };
      present.run('items', owner, now + 10_000);
      expired.get('items', now);
      due.get('items', now);
      return row.cursor;
    });
    // Commit: compare-and-set of the cursor, then the tokens and the leases.
    const ranges = Array.from({ length: 4 }, (_, r) =>
      JSON.stringify({
        ids: Array.from({ length: 100 }, (_, k) => i * 400 + r * 100 + k),
        lastId: i * 400 + r * 100 + 99,
        prev: null,
      }),
    );
    const leased = tx(() => {
      const now = Date.now();
      const next = JSON.stringify(`${owner}-${i}`);
      if (
        Number(moveCursor.run(next, 'items', cursor, 'running').changes) !== 1
      )
        return [];
      const { token } = tokens.get(now * 1000, ranges.length, 'items') as {
        token: number;
      };
      const first = token - ranges.length + 1;
      ranges.forEach((range, k) =>
        insertLease.run(
          'items',
          first + k,
          'r1',
          owner,
          now + 10_000,
          100,
          range,
        ),
      );
      return ranges.map((_, k) => first + k);
    });
    // Complete: the owner's leases gone, the counters up.
    tx(() => {
      let ids = 0;
      for (const token of leased) {
        const lease = takeLease.get('items', token, owner) as
          { n: number } | undefined;
        if (lease) ids += lease.n;
      }
      addCounts.run(ids, leased.length, 'items');
    });
  }
  const ms = performance.now() - started;
  db.close();
  return ms;
}

function prepare(driver: Driver, file: string): void {
  const db = open(driver, file);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(SCHEMA);
  db.prepare(
    "INSERT INTO jobs (job, run_id, state, control, cursor) VALUES ('items', 'r1', 'running', 'run', 'null')",
  ).run();
  db.close();
}

/**
 * One round: `processes` processes over one fresh file; cycles per second over
 * all of them, timed inside each process (not its start), until the slowest ends.
 */
async function round(driver: Driver, processes: number, count: number) {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sqlite-bench-'));
  const file = join(dir, 'state.db');
  prepare(driver, file);
  const times: number[] = [];
  await Promise.all(
    Array.from(
      { length: processes },
      (_, p) =>
        new Promise<void>((resolve, reject) => {
          const child = fork(
            __filename,
            ['child', driver, file, `host-${p}`, String(count)],
            {
              execArgv: process.execArgv,
              stdio: 'inherit',
            },
          );
          child.on('message', (ms) => times.push(Number(ms)));
          child.on('exit', (code) =>
            code === 0 ? resolve() : reject(new Error(`child exited ${code}`)),
          );
        }),
    ),
  );
  const seconds = Math.max(...times) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return (processes * count) / seconds;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function main(): Promise<void> {
  const [, , role, ...rest] = process.argv;
  if (role === 'child') {
    const [driver, file, owner, count] = rest;
    process.send?.(cycles(driver as Driver, file, owner, Number(count)));
    return;
  }
  const runs = Number(process.env.SQLITE_BENCH_RUNS ?? 5);
  const count = Number(process.env.SQLITE_BENCH_CYCLES ?? 3000);
  console.log(
    `Node ${process.version}, ${runs} rounds of ${count} cycles per process`,
  );
  const drivers: Driver[] = ['node:sqlite', 'better-sqlite3'];
  for (const processes of [1, 3]) {
    const results = new Map<Driver, number[]>(drivers.map((d) => [d, []]));
    // The drivers take turns, so a busy moment of a shared machine falls on both.
    for (let r = 0; r < runs; r++)
      for (const driver of drivers)
        results.get(driver)?.push(await round(driver, processes, count));
    for (const [driver, values] of results)
      console.log(
        `${driver.padEnd(15)} ${processes} process(es): median ${Math.round(median(values))} cycles/s (${values.map(Math.round).join(', ')})`,
      );
  }
}

void main();
