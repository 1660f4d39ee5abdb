import { createServer } from 'node:net';
import mysqlCallback from 'mysql2';
import mysql from 'mysql2/promise';
import { Client, Pool } from 'pg';
import {
  type HealthIndicator,
  type HealthSignal,
  mysqlHealth,
  ParallelWorkerConfigError,
  postgresHealth,
} from '../../lib';
import { MYSQL_URL } from '../support/mysql';
import { type PgReplica, startPgReplica } from '../support/pg-replica';
import { sleep, waitUntil } from '../support/processes';

/**
 * The built-in health indicators (DESIGN 3b) against real servers: a
 * PostgreSQL primary with a streaming standby of the test's own (so that no
 * other test's sessions count), and the machine's MariaDB.
 */

const ctx = { job: 'backfill', runId: 'r1' };
const closed: HealthIndicator[] = [];
const indicator = (made: HealthIndicator) => (closed.push(made), made);

/** Asks `health` every 50 ms until its answer passes `want`; that answer and how long it took. */
async function untilSignal(
  health: HealthIndicator,
  want: (signal: HealthSignal) => boolean,
  timeoutMs: number,
): Promise<{ signal: HealthSignal; afterMs: number }> {
  const start = Date.now();
  let signal = await health(ctx);
  while (!want(signal)) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`still ${JSON.stringify(signal)} after ${timeoutMs} ms`);
    await sleep(50);
    signal = await health(ctx);
  }
  return { signal, afterMs: Date.now() - start };
}

const isHold = (s: HealthSignal) => s.state === 'hold';
const isOk = (s: HealthSignal) => s.state === 'ok';
const reasonOf = (s: HealthSignal) => (s.state === 'ok' ? '' : s.reason);

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

afterAll(async () => {
  await Promise.all(closed.map(async (h) => h.close?.()));
});

describe('postgresHealth', () => {
  let replica: PgReplica;
  let pool: Pool;
  let standby: Pool;
  const sessions: Client[] = [];
  const session = async () => {
    const client = new Client({ connectionString: replica.primaryUrl });
    await client.connect();
    sessions.push(client);
    return client;
  };

  beforeAll(async () => {
    replica = await startPgReplica();
    pool = new Pool({ connectionString: replica.primaryUrl, max: 4 });
    standby = new Pool({ connectionString: replica.standbyUrl, max: 2 });
    await pool.query(
      `CREATE TABLE watched (id int PRIMARY KEY, payload text);
       CREATE TABLE other (id int PRIMARY KEY, payload text);
       CREATE TABLE beat (id serial PRIMARY KEY, at timestamptz DEFAULT now());
       INSERT INTO watched SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
       INSERT INTO other SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;`,
    );
  }, 30_000);

  afterAll(async () => {
    await Promise.all(sessions.map((c) => c.end().catch(() => undefined)));
    await pool?.end();
    await standby?.end();
    await replica?.stop();
  });

  it('answers ok on a healthy primary, and verify() passes', async () => {
    const health = postgresHealth(pool, {
      tables: ['watched', 'public.other'],
      maxReplicationLagMs: 1000,
      maxTransactionAgeMs: 2000,
      maxActiveBackends: 3,
    });
    expect(health.indicatorName).toBe('postgresHealth');
    await health.verify!();
    expect(await health(ctx)).toEqual({ state: 'ok' });
    // The user's pool is theirs: close() leaves it open.
    await health.close!();
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('holds while a replica does not replay and the primary writes, then goes on once it replays', async () => {
    const health = postgresHealth(pool, { maxReplicationLagMs: 1000 });
    const onStandby = indicator(
      postgresHealth(replica.standbyUrl, { maxReplicationLagMs: 1000 }),
    );
    await onStandby.verify!();
    let writing = true;
    const writes = (async () => {
      while (writing) {
        await pool.query('INSERT INTO beat DEFAULT VALUES');
        await sleep(100);
      }
    })();
    try {
      // The standby's own lag dates the wait by its last replayed commit: let it replay one first.
      await waitUntil(
        async () =>
          (
            await standby
              .query('SELECT count(*)::int AS n FROM beat')
              .catch(() => ({ rows: [{ n: 0 }] }))
          ) // not replayed its CREATE yet
          .rows[0].n > 0,
        5000,
        'the standby to replay a write',
      );
      const paused = Date.now();
      await standby.query('SELECT pg_wal_replay_pause()');
      const held = await untilSignal(health, isHold, 8000);
      const heldAfter = Date.now() - paused;
      expect(reasonOf(held.signal)).toMatch(
        /^replica "walreceiver" at 127\.0\.0\.1 replay lag \d+\.\d s > maxReplicationLagMs 1000$/,
      );
      // The lag is real time the standby has not replayed: never more than the time since the pause.
      expect(heldAfter).toBeGreaterThanOrEqual(1000);
      expect(heldAfter).toBeLessThan(4000);
      const self = await untilSignal(onStandby, isHold, 3000);
      expect(reasonOf(self.signal)).toMatch(
        /^this server is a replica and its replay lags \d+\.\d s > maxReplicationLagMs 1000$/,
      );

      const resumed = Date.now();
      await standby.query('SELECT pg_wal_replay_resume()');
      await untilSignal(health, isOk, 3000);
      await untilSignal(onStandby, isOk, 3000);
      expect(Date.now() - resumed).toBeLessThan(3000);
    } finally {
      writing = false;
      await writes;
      await standby.query('SELECT pg_wal_replay_resume()');
    }
  });

  it('holds while a transaction stays open past maxTransactionAgeMs', async () => {
    const health = postgresHealth(pool, { maxTransactionAgeMs: 1000 });
    const idle = await session(); // connected, in no transaction: never counts
    const open = await session();
    await open.query("SET application_name = 'report'");
    await open.query('BEGIN');
    await open.query('SELECT count(*) FROM watched');
    const pid = (open as unknown as { processID: number }).processID;
    expect(await health(ctx)).toEqual({ state: 'ok' });
    const held = await untilSignal(health, isHold, 3000);
    expect(reasonOf(held.signal)).toMatch(
      new RegExp(
        `^transaction of pid ${pid} \\(user postgres, application "report", idle in transaction\\) open 1\\.\\d s > maxTransactionAgeMs 1000$`,
      ),
    );
    await open.query('COMMIT');
    expect(await health(ctx)).toEqual({ state: 'ok' });
    expect(idle).toBeDefined();
  });

  it('holds while a VACUUM of one of its tables runs, not of another table', async () => {
    const health = postgresHealth(pool, { tables: ['watched'] });
    const vacuumer = await session();
    const vacuumerPid = (vacuumer as unknown as { processID: number })
      .processID;
    // A vacuum that sleeps after every page: long enough to watch, cancelled when seen.
    await vacuumer.query(
      'SET vacuum_cost_delay = 100; SET vacuum_cost_limit = 1',
    );
    const vacuum = async (table: string, check: () => Promise<void>) => {
      const running = vacuumer.query(`VACUUM ${table}`).catch((e: Error) => e);
      await waitUntil(
        async () =>
          (
            await pool.query(
              `SELECT 1 FROM pg_stat_progress_vacuum WHERE pid = $1 AND phase = 'scanning heap'`,
              [vacuumerPid],
            )
          ).rows.length > 0,
        5000,
        `the VACUUM of ${table} to run`,
      );
      await check();
      await pool.query('SELECT pg_cancel_backend($1)', [vacuumerPid]);
      expect(await running).toMatchObject({
        message: expect.stringMatching(/canceling statement/),
      });
    };

    await vacuum('other', async () => {
      expect(await health(ctx)).toEqual({ state: 'ok' });
    });
    await vacuum('watched', async () => {
      expect(reasonOf(await health(ctx))).toMatch(
        new RegExp(
          `^VACUUM of watched running \\(pid ${vacuumerPid}, phase scanning heap, \\d+% of \\d+ blocks scanned\\)$`,
        ),
      );
      // vacuum: false turns the check off.
      const off = postgresHealth(pool, {
        tables: ['watched'],
        vacuum: false,
        maxActiveBackends: 10,
      });
      expect(await off(ctx)).toEqual({ state: 'ok' });
    });
    expect(await health(ctx)).toEqual({ state: 'ok' });
  });

  it('holds while more backends than maxActiveBackends run a statement', async () => {
    const health = postgresHealth(pool, { maxActiveBackends: 2 });
    const sleepers = await Promise.all([session(), session(), session()]);
    const running = sleepers.map((c) =>
      c.query('SELECT pg_sleep(30)').catch((e: Error) => e),
    );
    const pids = sleepers.map(
      (c) => (c as unknown as { processID: number }).processID,
    );
    try {
      const held = await untilSignal(health, isHold, 5000);
      expect(held.signal).toEqual({
        state: 'hold',
        reason: '3 active backends > maxActiveBackends 2',
      });
    } finally {
      await pool.query(
        'SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) pid',
        [pids],
      );
      await Promise.all(running);
    }
    expect(await health(ctx)).toEqual({ state: 'ok' });
  });

  it('verify() names a table that does not exist', async () => {
    const health = postgresHealth(pool, { tables: ['watched', 'nope_table'] });
    await expect(health.verify!()).rejects.toThrow(ParallelWorkerConfigError);
    await expect(health.verify!()).rejects.toThrow(
      /^postgresHealth: option "tables" names "nope_table", which does not exist in postgres:\/\/\*\*\*@127\.0\.0\.1:\d+\/postgres \(looked up on the role's search_path/,
    );
  });

  it('verify() tells a role without pg_monitor to get it, since it would read NULL lags', async () => {
    await pool.query('CREATE ROLE watcher LOGIN');
    const url = replica.primaryUrl.replace('postgres@', 'watcher@');
    const health = indicator(
      postgresHealth(url, { maxReplicationLagMs: 1000 }),
    );
    const watcher = new Pool({ connectionString: url, max: 1 });
    try {
      // What the check guards against: the replica's row is there, its lag hidden.
      expect(
        (await watcher.query('SELECT replay_lsn FROM pg_stat_replication'))
          .rows,
      ).toEqual([{ replay_lsn: null }]);
    } finally {
      await watcher.end();
    }
    await expect(health.verify!()).rejects.toThrow(
      /^postgresHealth: the role "watcher" cannot read other sessions' statistics.*GRANT pg_monitor TO/,
    );
    await expect(health(ctx)).rejects.toThrow(/GRANT pg_monitor/);
    await pool.query('GRANT pg_monitor TO watcher');
    await health.verify!();
    expect(await health(ctx)).toEqual({ state: 'ok' });
  });

  it('verify() says a server cannot be reached, never printing the password', async () => {
    const port = await closedPort();
    const health = indicator(
      postgresHealth(`postgres://app:s3cret-pw@127.0.0.1:${port}/test`, {
        maxTransactionAgeMs: 1000,
      }),
    );
    const error = await health.verify!().catch((e: Error) => e);
    expect(error).toBeInstanceOf(ParallelWorkerConfigError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^postgresHealth: cannot query PostgreSQL at postgres://\\*\\*\\*@127\\.0\\.0\\.1:${port}/test \\(.*ECONNREFUSED.*\\)\\. Check that the server is up`,
      ),
    );
    expect((error as Error).message).not.toContain('s3cret-pw');
    await expect(health(ctx)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses bad options when it is built', () => {
    expect(() => postgresHealth(pool, { maxReplicationLagMs: -1 })).toThrow(
      'postgresHealth: option "maxReplicationLagMs" must be a number of milliseconds above 0, got -1.',
    );
    expect(() => postgresHealth(pool, { maxActiveBackends: 2.5 })).toThrow(
      'postgresHealth: option "maxActiveBackends" must be a whole number, 0 or more, got 2.5.',
    );
    expect(() => postgresHealth(pool, { maxLagMs: 5 } as never)).toThrow(
      /^postgresHealth: unknown option "maxLagMs"; the options are tables, vacuum/,
    );
    expect(() => postgresHealth(pool, {})).toThrow(
      'postgresHealth: no check is on: give maxReplicationLagMs, maxTransactionAgeMs, maxActiveBackends or tables.',
    );
  });
});

describe('mysqlHealth', () => {
  const SLEEPERS = 8;

  it('holds while Threads_running is above maxThreadsRunning, ok again after', async () => {
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
    const health = mysqlHealth(pool, { maxThreadsRunning: 5 });
    expect(health.indicatorName).toBe('mysqlHealth');
    await health.verify!();
    const sleepers = await Promise.all(
      Array.from({ length: SLEEPERS }, () =>
        mysql.createConnection({ uri: MYSQL_URL }),
      ),
    );
    try {
      const running = sleepers.map((c) => c.query('SELECT SLEEP(3)'));
      const held = await untilSignal(health, isHold, 2000);
      // Other sessions of this shared server can only add to the count.
      const [, count] = /^Threads_running (\d+) > maxThreadsRunning 5$/.exec(
        reasonOf(held.signal),
      )!;
      expect(Number(count)).toBeGreaterThanOrEqual(SLEEPERS);
      await Promise.all(running);
      // A callback pool too, with the replica check (this server is no replica: no lag).
      const callbackPool = mysqlCallback.createPool({ uri: MYSQL_URL });
      const callbackHealth = mysqlHealth(callbackPool, {
        maxThreadsRunning: 5,
        maxReplicationLagMs: 1000,
      });
      await callbackHealth.verify!();
      await untilSignal(callbackHealth, isOk, 3000);
      await new Promise((r) => callbackPool.end(r));
    } finally {
      await Promise.all(sleepers.map((c) => c.end()));
      await health.close!();
      await pool.end();
    }
  });

  it('verify() says a server cannot be reached, never printing the password', async () => {
    const port = await closedPort();
    const health = indicator(
      mysqlHealth(`mysql://root:s3cret-pw@127.0.0.1:${port}/test`, {
        maxThreadsRunning: 10,
      }),
    );
    const error = await health.verify!().catch((e: Error) => e);
    expect(error).toBeInstanceOf(ParallelWorkerConfigError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^mysqlHealth: cannot query MySQL at mysql://\\*\\*\\*@127\\.0\\.0\\.1:${port}/test \\(.*ECONNREFUSED.*\\)\\. Check that the server is up`,
      ),
    );
    expect((error as Error).message).not.toContain('s3cret-pw');
  });

  it('refuses bad options when it is built', () => {
    expect(() => mysqlHealth(MYSQL_URL, { maxThreadsRunning: -1 })).toThrow(
      'mysqlHealth: option "maxThreadsRunning" must be a whole number, 0 or more, got -1.',
    );
  });
});
