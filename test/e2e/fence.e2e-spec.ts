import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FixtureRun, startFixture } from '../support/fixture';
import { killHost, sleep, waitUntil } from '../support/processes';
import { REDIS_URL } from '../support/redis-server';
import { MARIADB, POSTGRES, type SqlBackend } from '../support/sql-backends';

const ROWS = 30;
const RANGE = 10;
const LEASE_MS = 1000;

/** The handler's FENCE… lines for the range at id 1: `{ attempt, token, applied? }`. */
const fenceLines = (host: FixtureRun, what: string) =>
  [
    ...host
      .output()
      .matchAll(
        new RegExp(
          `^${what} pid=\\d+ attempt=(\\d+) token=(\\d+) first=1$`,
          'gm',
        ),
      ),
  ].map((m) => ({ attempt: Number(m[1]), token: Number(m[2]) }));

/**
 * A zombie attempt against the attempt its range was handed to next, on real
 * cluster workers, on PostgreSQL (and MariaDB for the second order). Host A's handler of the range at id 1
 * (attempt 1) waits for a marker file, inside its fenced transaction or
 * before it; the test SIGSTOPs A's primary (its workers go on) for longer
 * than leaseMs, so host B takes the range as attempt 2; the marker file then
 * orders the two transactions, and A gets SIGCONT at the end.
 */
describe('ctx.fence against a zombie attempt (e2e)', () => {
  const drop: [SqlBackend, string][] = [];
  const files: string[] = [];
  let hosts: FixtureRun[] = [];
  afterEach(() => {
    for (const h of hosts) if (h.child.exitCode === null) killHost(h);
  });
  afterAll(async () => {
    for (const [db, t] of drop) await db.drop(t);
    for (const f of files) rmSync(f, { force: true });
  });

  const setUp = async (db: SqlBackend, holdAt: 'commit' | 'before') => {
    const table = await db.createItems(ROWS);
    const fence = await db.createFence();
    drop.push([db, table], [db, fence]);
    const marker = join(tmpdir(), `pw-fence-${randomBytes(4).toString('hex')}`);
    files.push(marker);
    const env = {
      ...db.env,
      FIXTURE_TABLE: table,
      REDIS_URL,
      FIXTURE_PREFIX: `pw-fence-${randomBytes(4).toString('hex')}`,
      FIXTURE_WORKERS: 1,
      FIXTURE_RANGE_SIZE: RANGE,
      FIXTURE_LEASE_MS: LEASE_MS,
      FIXTURE_FENCE: 1,
      FIXTURE_FENCE_TABLE: fence,
      FIXTURE_FENCE_HOLD_IDS: 1,
      FIXTURE_FENCE_HOLD_AT: holdAt,
      FIXTURE_FENCE_HOLD_FILE: marker,
    };
    const a = startFixture(env);
    hosts = [a];
    await a.waitFor(
      new RegExp(
        `^FENCE_HOLD at=${holdAt} pid=\\d+ attempt=1 .* first=1$`,
        'm',
      ),
    );
    // A's primary stops renewing its leases; its worker, in the handler, goes on.
    process.kill(a.child.pid as number, 'SIGSTOP');
    const stoppedAt = Date.now();
    const b = startFixture(env);
    hosts = [a, b];
    await b.waitFor(/^FENCE_CALL pid=\d+ attempt=2 token=\d+ first=1$/m);
    // (Attempt 2: A's lease ran out, leaseMs after its last renewal, which came before the stop.)
    return { a, b, table, fence, marker, stoppedAt };
  };

  /** Both hosts end with the run completed; every row was written exactly once. */
  const finish = async (
    db: SqlBackend,
    a: FixtureRun,
    b: FixtureRun,
    table: string,
    stoppedAt: number,
  ) => {
    // Stopped for twice leaseMs at least, as a primary in a long GC pause or a paused VM.
    await sleep(stoppedAt + 2 * LEASE_MS - Date.now());
    process.kill(a.child.pid as number, 'SIGCONT');
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(rb.summary).toMatchObject({ status: 'completed', ids: ROWS });
    expect(ra.summary?.status).toBe('completed');
    return db.query<{ id: string; processed: number; max_attempt: number }>(
      `SELECT id, processed, max_attempt FROM ${table} ORDER BY id`,
    );
  };

  const on = (...dbs: SqlBackend[]) => dbs.map((db) => ({ db, name: db.name }));

  it.each(on(POSTGRES, MARIADB))(
    '(a) the zombie commits first: the next attempt waits on the row lock, then skips ($name)',
    async ({ db }) => {
      const { a, b, table, fence, marker, stoppedAt } = await setUp(
        db,
        'commit',
      );
      // B's fence waits for A's open transaction, which holds the range's fence row.
      await waitUntil(
        async () => (await db.insertsWaiting(fence)) === 1,
        10_000,
        "B's fence waiting on the row lock",
      );
      expect(fenceLines(b, 'FENCE applied=(?:true|false)')).toEqual([]);
      writeFileSync(marker, '');
      await b.waitFor(/^FENCE applied=false pid=\d+ attempt=2 .* first=1$/m);
      const zombie = fenceLines(a, 'FENCE applied=true');
      expect(zombie).toEqual([{ attempt: 1, token: expect.any(Number) }]);
      await a.waitFor(/^FENCE_COMMITTED pid=\d+ attempt=1 .* first=1$/m);
      expect(fenceLines(a, 'FENCE_COMMITTED')).toEqual(zombie);
      const rows = await finish(db, a, b, table, stoppedAt);
      expect(rows.filter((r) => r.processed !== 1)).toEqual([]);
      // Rows 1..10 were written by the zombie (attempt 1), whose token the fence row keeps.
      expect(rows.slice(0, RANGE).map((r) => r.max_attempt)).toEqual(
        Array(RANGE).fill(1),
      );
      const [row] = await db.query<{ token: string }>(
        `SELECT token FROM ${fence} WHERE first_id = '1'`,
      );
      expect(Number(row.token)).toBe(zombie[0].token);
      expect(fenceLines(b, 'FENCE applied=true')).toEqual([]);
    },
  );

  it.each(on(POSTGRES, MARIADB))(
    '(b) the next attempt commits first: the zombie fence resolves false and it writes nothing ($name)',
    async ({ db }) => {
      const { a, b, table, fence, marker, stoppedAt } = await setUp(
        db,
        'before',
      );
      const [next] = fenceLines(b, 'FENCE_CALL');
      expect(next.attempt).toBe(2);
      await b.waitFor(/^FENCE applied=true pid=\d+ attempt=2 .* first=1$/m);
      // B's transaction committed: the range's rows are written by attempt 2.
      await waitUntil(
        async () =>
          (
            await db.query(
              `SELECT id FROM ${table} WHERE id <= ${RANGE} AND processed = 1 AND max_attempt = 2`,
            )
          ).length === RANGE,
        10_000,
        "B's commit",
      );
      writeFileSync(marker, '');
      await a.waitFor(/^FENCE applied=false pid=\d+ attempt=1 .* first=1$/m);
      expect(fenceLines(a, 'FENCE applied=true')).toEqual([]);
      expect(fenceLines(a, 'FENCE_COMMITTED')).toEqual([]);
      const rows = await finish(db, a, b, table, stoppedAt);
      expect(rows.filter((r) => r.processed !== 1)).toEqual([]);
      expect(rows.slice(0, RANGE).map((r) => r.max_attempt)).toEqual(
        Array(RANGE).fill(2),
      );
      const [row] = await db.query<{ token: string }>(
        `SELECT token FROM ${fence} WHERE first_id = '1'`,
      );
      expect(Number(row.token)).toBe(next.token);
    },
  );
});
