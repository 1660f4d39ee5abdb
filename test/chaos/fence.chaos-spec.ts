import { randomBytes } from 'node:crypto';
import type { RunSummary } from '../../lib';
import { type FixtureRun, startFixture } from '../support/fixture';
import { killHost, killWorker, sleep } from '../support/processes';
import { OwnRedis } from '../support/redis-server';
import {
  handled,
  lostAndDuplicated,
  MARIADB,
  POSTGRES,
  type SqlBackend,
} from '../support/sql-backends';

const ROWS = 24_000;
const RANGE = 200;
const RANGES = ROWS / RANGE;
/** Leases lost while Redis is frozen: twice leaseMs. */
const LEASE_MS = 1000;
const FREEZE_MS = 2000;

/** Worker kills at these shares of the rows, Redis frozen at FREEZE_AT, one host killed at HOST_AT. */
const WORKER_KILLS = [0.08, 0.18, 0.28, 0.6, 0.68, 0.76];
const FREEZE_AT = 0.38;
const HOST_AT = 0.5;

interface Group {
  label: 'fenced' | 'unfenced';
  table: string;
  prefix: string;
  hosts: FixtureRun[];
}

/**
 * The same chaos, at the same progress, on two runs side by side over two
 * copies of a table: one handler writes each range in a transaction fenced
 * with ctx.fence(tx), the other in the same transaction unfenced. 3 hosts x
 * 2 workers each, sharing a redis-server of the test's own; workers SIGKILLed
 * (some inside their transaction, some after the commit), one host SIGKILLed,
 * Redis frozen for twice leaseMs (every lease lost while handlers go on and
 * commit), and every 25th range failing once after its commit. Checked on the
 * database: the fenced run's effects are exactly once, the unfenced run's are
 * not.
 */
describe('ctx.fence under chaos', () => {
  const dropLater: [SqlBackend, string][] = [];
  const running: FixtureRun[] = [];
  afterEach(() => {
    for (const h of running) if (h.child.exitCode === null) killHost(h);
  });
  afterAll(async () => {
    for (const [db, table] of dropLater) await db.drop(table);
  });

  it.each([POSTGRES, MARIADB].map((db) => ({ db, name: db.name })))(
    'commits every range exactly once when fenced, and some twice when not ($name)',
    async ({ db }) => {
      const redis = new OwnRedis();
      await redis.start();
      const fence = await db.createFence();
      dropLater.push([db, fence]);
      const groups: Group[] = [];
      for (const label of ['unfenced', 'fenced'] as const) {
        const table = await db.createItems(ROWS);
        dropLater.push([db, table]);
        groups.push({
          label,
          table,
          prefix: `pw-fence-${randomBytes(4).toString('hex')}`,
          hosts: [],
        });
      }
      const started = Date.now();
      for (const g of groups) {
        const env = {
          ...db.env,
          FIXTURE_TABLE: g.table,
          REDIS_URL: redis.url,
          FIXTURE_PREFIX: g.prefix,
          FIXTURE_WORKERS: 2,
          FIXTURE_RANGE_SIZE: RANGE,
          FIXTURE_LEASE_MS: LEASE_MS,
          FIXTURE_MAX_RESTARTS: 100,
          FIXTURE_MAX_ATTEMPTS: 10,
          FIXTURE_BACKOFF_MS: 100,
          FIXTURE_TX_MS: 60,
          FIXTURE_HANDLER_MS: 60,
          FIXTURE_FAIL_AFTER_COMMIT_EVERY: 25,
          ...(g.label === 'fenced'
            ? { FIXTURE_FENCE: 1, FIXTURE_FENCE_TABLE: fence }
            : { FIXTURE_TX: 1 }),
        };
        g.hosts = Array.from({ length: 3 }, () => startFixture(env));
        running.push(...g.hosts);
      }
      // Host 0 of each run is the one killed; the run ends when the other two have.
      const finished = Promise.all(
        groups.map((g) => Promise.all(g.hosts.slice(1).map((h) => h.exited))),
      );
      let ended = false;
      void finished.finally(() => (ended = true));
      const progress = () =>
        Promise.all(
          groups.map(async (g) => (await handled(db, g.table)) / ROWS),
        );
      // Each run's own chaos, in order, at its own progress: worker kills on a random host (a survivor after the
      // host kill) and host 0 killed at HOST_AT. The same hosts are picked for both runs.
      const schedule = [
        ...WORKER_KILLS.map((at) => ({
          at,
          host:
            at < HOST_AT
              ? Math.floor(Math.random() * 3)
              : 1 + Math.floor(Math.random() * 2),
        })),
        { at: HOST_AT, host: 0, whole: true },
      ].sort((x, y) => x.at - y.at);
      const next = new Map(groups.map((g) => [g, 0]));
      const killed: number[] = [];
      const hostsKilled = new Set<FixtureRun>();
      let frozen = false;
      try {
        while (
          !ended &&
          (!frozen || groups.some((g) => next.get(g)! < schedule.length))
        ) {
          await sleep(30 + Math.random() * 70);
          if (ended) break;
          const at = await progress();
          if (!frozen && Math.min(...at) >= FREEZE_AT) {
            // Every command hangs: no host renews its leases, and each gives them up at leaseMs while its
            // handlers go on; after the thaw the ranges go out again, at attempt 2, to whichever host asks.
            redis.freeze();
            await sleep(FREEZE_MS);
            redis.thaw();
            frozen = true;
            continue;
          }
          for (const [j, g] of groups.entries()) {
            // Every event due by now, in order: a run never falls behind its schedule (and ends with kills
            // left) while the loop waited on the freeze or on the other run.
            for (;;) {
              const event = schedule[next.get(g)!];
              if (!event || at[j] < event.at) break;
              if ('whole' in event) {
                killHost(g.hosts[0]);
                hostsKilled.add(g.hosts[0]);
              } else {
                // The chosen host first; one restarting its workers has none this moment: another live one.
                const order = [event.host, 0, 1, 2].filter(
                  (h, i, all) =>
                    all.indexOf(h) === i && !hostsKilled.has(g.hosts[h]),
                );
                let pid: number | undefined;
                for (const h of order) {
                  pid = killWorker(g.hosts[h]);
                  if (pid !== undefined) break;
                }
                // None has a worker this moment: next time round.
                if (pid === undefined) break;
                killed.push(pid);
              }
              next.set(g, next.get(g)! + 1);
            }
          }
        }
      } finally {
        redis.thaw();
      }
      const results = (await finished).flat();
      const seconds = (Date.now() - started) / 1000;
      redis.stop();

      expect(frozen).toBe(true);
      expect(killed).toHaveLength(WORKER_KILLS.length * 2);
      // Host 0 of each run was still running when it was killed.
      for (const g of groups)
        expect((await g.hosts[0].exited).signal).toBe('SIGKILL');
      // A host that failed says why: the end of its output.
      for (const r of results)
        expect({
          code: r.code,
          tail: r.code ? r.output.slice(-4000) : '',
        }).toEqual({
          code: 0,
          tail: '',
        });
      const measured: Record<string, string> = {};
      for (const [i, g] of groups.entries()) {
        const summary = results[i * 2].summary as RunSummary;
        expect(summary).toMatchObject({ status: 'completed', ids: ROWS });
        const { lost, duplicated, notRetried } = await lostAndDuplicated(
          db,
          g.table,
        );
        const outputs = g.hosts.map((h) => h.output()).join('\n');
        const skipped = (outputs.match(/^FENCE applied=false /gm) ?? []).length;
        const late = (outputs.match(/finished after its lease was lost/g) ?? [])
          .length;
        measured[g.label] =
          `lost=${lost} duplicated=${duplicated} (fence skips=${skipped}, results after a lost lease=${late}, retried=${summary.ranges.retried}, restarts=${summary.workers.restarted})`;
        expect(lost).toBe(0);
        // Whatever ran twice was handed out again (attempt 2 or later).
        expect(notRetried).toBe(0);
        if (g.label === 'unfenced') {
          expect(duplicated).toBeGreaterThan(0);
          continue;
        }
        expect(duplicated).toBe(0);
        // Re-handed attempts found their range committed and wrote nothing.
        expect(skipped).toBeGreaterThan(0);
        // One fence row per range of the run, covering every row once.
        const [fenced] = await db.query<{ ranges: unknown; ids: unknown }>(
          `SELECT COUNT(*) AS ranges, SUM(ids) AS ids FROM ${fence} WHERE run_id = '${summary.runId}'`,
        );
        expect({
          ranges: Number(fenced.ranges),
          ids: Number(fenced.ids),
        }).toEqual({ ranges: RANGES, ids: ROWS });
      }
      console.log(
        `ctx.fence chaos on ${db.name}: ${ROWS} rows, ${killed.length / 2} worker kills + 1 host + Redis frozen ${FREEZE_MS} ms (leaseMs ${LEASE_MS}), each run; fenced ${measured.fenced}; unfenced ${measured.unfenced}; ${seconds.toFixed(1)} s`,
      );
    },
    90_000,
  );
});
