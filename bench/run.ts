import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { fenceDdl } from '../lib';
import { chart } from './chart';

/**
 * `npm run bench`: this library (memory, Redis and SQLite store), BullMQ (one job per
 * range) and a plain single-process keyset loop, side by side, several rounds;
 * prints a table of medians and ratios and writes bench/results.{json,md,svg}.
 * BENCH_SMOKE=1 runs a tiny version (CI) that only checks everything runs;
 * BENCH_ONLY=fence runs only the fenced UPDATE against the unfenced one,
 * BENCH_ONLY=health only the UPDATE with postgresHealth on against off, and
 * prints its rows and ratio (bench/results.* stay as the last full run left them).
 */
const SMOKE = process.env.BENCH_SMOKE === '1';
const ONLY = process.env.BENCH_ONLY;
if (ONLY !== undefined && ONLY !== 'fence' && ONLY !== 'health')
  throw new Error(`BENCH_ONLY takes 'fence' or 'health', got '${ONLY}'`);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
const ROWS = SMOKE ? 2000 : 200_000;
const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TABLE = SMOKE ? 'bench_items_smoke' : 'bench_items';
/** The big UPDATE's table: 10x the rows. */
const BIG_TABLE = `${TABLE}_10x`;
const BIG_ROWS = ROWS * 10;
/** Tables for the 5 ms loader: small enough that one partition finishes in seconds. */
const SLOW_TABLE = `${TABLE}_slow`;
const SLOW_ROWS = SMOKE ? 400 : 10_000;
const HOSTS_TABLE = `${TABLE}_hosts`;
const HOSTS_ROWS = SMOKE ? 800 : 80_000;
/** ctx.fence()'s table for the fenced UPDATE, created afresh by each bench with fenceDdl(). */
const FENCE_TABLE = `${TABLE}_fence`;
const dist = join(__dirname);
const FROM_MEMORY = SMOKE ? ROWS : 1_000_000;
/** How workload names write a count of ids or rows (smaller in the smoke run). */
const n = (count: number) => count.toLocaleString('en');

type Env = Record<string, string | number>;
interface Result {
  seconds: number;
  ranges: number;
  rss?: number;
  /** What the process printed on stdout (workers included). */
  output?: string;
  /** This library: the measured run's id, workers it forked, primary RSS it added, loader calls that returned ids. */
  runId?: string;
  forked?: number;
  rssAdded?: number;
  loads?: number;
}

function node(script: string, args: string[], env: Env): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(dist, script), ...args], {
      env: {
        ...process.env,
        DATABASE_URL,
        BENCH_TABLE: TABLE,
        BENCH_ROWS: String(ROWS),
        ...Object.fromEntries(
          Object.entries(env).map(([k, v]) => [k, String(v)]),
        ),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line)
        return reject(
          new Error(
            `${script} ${args.join(' ')} exited ${code}:\n${out.slice(-2000)}`,
          ),
        );
      resolve({ ...JSON.parse(line.slice(7)), output: out });
    });
  });
}

/** This library: one run of a job of bench/app; seconds from run() to its end, worker start-up included. */
async function ours(
  job: string,
  store: 'memory' | 'redis' | 'sqlite',
  env: Env = {},
): Promise<Result> {
  const redis: Env =
    store === 'redis'
      ? { REDIS_URL, BENCH_PREFIX: `bench-${randomBytes(4).toString('hex')}` }
      : store === 'sqlite'
        ? {
            BENCH_SQLITE: join(
              tmpdir(),
              `bench-${randomBytes(4).toString('hex')}.db`,
            ),
          }
        : {};
  const r = (await node('app/main.js', [], {
    BENCH_JOB: job,
    ...redis,
    ...env,
  }).finally(() => {
    for (const suffix of ['', '-wal', '-shm'])
      if (redis.BENCH_SQLITE)
        rmSync(`${redis.BENCH_SQLITE}${suffix}`, { force: true });
  })) as unknown as {
    durationMs: number;
    runId: string;
    ranges: { completed: number };
    workers: { started: number };
    rss: number;
    rssAdded: number;
    loads: number;
    output: string;
  };
  return {
    seconds: r.durationMs / 1000,
    ranges: r.ranges.completed,
    rss: r.rss,
    output: r.output,
    runId: r.runId,
    forked: r.workers.started,
    rssAdded: r.rssAdded,
    loads: r.loads,
  };
}

/** ms from a run's run() call to its first handler call in any process (BENCH_MODE's RUN_AT and FIRST_CALL lines). */
function firstCallMs(output: string, runId: string): number {
  const at = (tag: string) =>
    Math.min(
      ...[...output.matchAll(new RegExp(`^${tag} ${runId} (\\S+)$`, 'gm'))].map(
        (m) => Number(m[1]),
      ),
    );
  return at('FIRST_CALL') - at('RUN_AT');
}

/** `hosts` primaries started together on one Redis (one prefix), each joining the run: the slowest one's time, and every host's loader calls. */
async function hosts(
  count: number,
  job: string,
  env: Env,
): Promise<Result & { loads: number }> {
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const all = await Promise.all(
    Array.from({ length: count }, () =>
      ours(job, 'memory', {
        ...env,
        REDIS_URL,
        BENCH_PREFIX: prefix,
        BENCH_JOIN: 1,
      }),
    ),
  );
  return {
    seconds: Math.max(...all.map((r) => r.seconds)),
    ranges: all[0].ranges,
    loads: all.reduce((n, r) => n + (r.loads ?? 0), 0),
  };
}

const bullmq = (workload: string, env: Env) =>
  node('peers/bullmq.js', [workload], {
    REDIS_URL,
    BENCH_QUEUE: `bench-${randomBytes(4).toString('hex')}`,
    ...env,
  });
const plain = (workload: string, env: Env) =>
  node('peers/plain-loop.js', [workload], env);
const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function ensureTable(table = TABLE, rows = ROWS): Promise<void> {
  const c = new Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, payload text NOT NULL, processed int NOT NULL DEFAULT 0)`,
  );
  const n = Number(
    (await c.query(`SELECT COUNT(*) AS n FROM ${table}`)).rows[0].n,
  );
  if (n !== rows) {
    await c.query(`TRUNCATE ${table} RESTART IDENTITY`);
    await c.query(
      `INSERT INTO ${table} (payload) SELECT md5(g::text) FROM generate_series(1, $1) g`,
      [rows],
    );
    await c.query(`VACUUM ANALYZE ${table}`);
  }
  await c.end();
}

/** An empty fence table, created the way docs/exactly-once.md says: fenceDdl(), outside any transaction. */
async function freshFenceTable(): Promise<void> {
  const c = new Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query(`DROP TABLE IF EXISTS ${FENCE_TABLE}`);
  await c.query(fenceDdl('postgres', FENCE_TABLE));
  await c.end();
}

/** The fenced UPDATE's workload (a transaction per range), and its ratio's name. */
const FENCED_UPDATE = `BEGIN, UPDATE … WHERE id = ANY($1), COMMIT per range, ${n(ROWS)} rows`;

/**
 * A transaction per range (BEGIN, UPDATE, COMMIT) without and with
 * ctx.fence(client) first, each round in turn first, so neither always
 * meets the other's dead tuples.
 */
async function fencedUpdate(
  round: number,
  record: (w: string, c: string, m: Row['metric'], v: number) => void,
): Promise<void> {
  const contenders = [
    ['this library, defaults, no fence', {}],
    [
      'this library, defaults, ctx.fence(client)',
      { BENCH_FENCE: 1, BENCH_FENCE_TABLE: FENCE_TABLE },
    ],
  ] as const;
  for (const [name, env] of round % 2
    ? contenders
    : [...contenders].reverse()) {
    const r = await ours('update-tx', 'memory', { BENCH_WORKERS: 2, ...env });
    record(FENCED_UPDATE, name, 's', r.seconds);
  }
}

/** The UPDATE with and without database-health holds, and its ratio's name. */
const HEALTH_UPDATE = `health option off and on: UPDATE … WHERE id = ANY($1) per range, ${n(ROWS)} rows`;

/**
 * The set-based UPDATE per range with the health option off, then on
 * (postgresHealth watching the same database: replica lag, the oldest open
 * transaction, a vacuum of the table; asked every healthIntervalMs, 5 s by
 * default, and after ranges end), each round in turn first. A run that was
 * held (another session's long transaction, a vacuum) would not measure the
 * indicator's cost: its heldMs is printed, and such a run fails the bench.
 */
async function healthUpdate(
  round: number,
  record: (w: string, c: string, m: Row['metric'], v: number) => void,
): Promise<void> {
  const contenders = [
    ['this library, defaults, no health option', {}],
    [
      'this library, defaults, postgresHealth (lag, transactions, vacuum)',
      {
        BENCH_HEALTH: 1,
        ...(process.env.BENCH_HEALTH_INTERVAL_MS && {
          BENCH_HEALTH_INTERVAL_MS: process.env.BENCH_HEALTH_INTERVAL_MS,
        }),
      },
    ],
  ] as const;
  for (const [name, env] of round % 2
    ? contenders
    : [...contenders].reverse()) {
    const r = await ours('update', 'memory', { BENCH_WORKERS: 2, ...env });
    const held = JSON.parse(
      (r.output ?? '')
        .split('\n')
        .find((l) => l.startsWith('RESULT '))
        ?.slice(7) ?? '{}',
    ).heldMs as number | undefined;
    if (held)
      throw new Error(
        `${name}: the run was held ${held} ms (the database was busy), so it measures no cost; run the bench again`,
      );
    record(HEALTH_UPDATE, name, 's', r.seconds);
  }
}

interface Row {
  workload: string;
  contender: string;
  metric: 'ranges/s' | 's' | 'ms' | 'MB' | '%';
  values: number[];
}

async function main(): Promise<void> {
  await ensureTable();
  if (!ONLY) {
    await ensureTable(BIG_TABLE, BIG_ROWS);
    await ensureTable(SLOW_TABLE, SLOW_ROWS);
    await ensureTable(HOSTS_TABLE, HOSTS_ROWS);
  }
  await freshFenceTable();
  const rows: Row[] = [];
  const record = (
    workload: string,
    contender: string,
    metric: Row['metric'],
    value: number,
  ) => {
    let row = rows.find(
      (r) => r.workload === workload && r.contender === contender,
    );
    if (!row) rows.push((row = { workload, contender, metric, values: [] }));
    row.values.push(value);
  };
  const coord = { BENCH_RANGE: 10, BENCH_WORKERS: 2, BENCH_CONCURRENCY: 16 };
  // Ids from memory: enough ranges that every contender's start-up (forking, connecting) is amortized.
  const fromMemory = { ...coord, BENCH_ROWS: FROM_MEMORY };
  const cpuRounds = SMOKE ? 20 : 4000;
  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round} of ${ROUNDS}\n`);
    if (ONLY === 'fence') {
      await fencedUpdate(round, record);
      continue;
    }
    if (ONLY === 'health') {
      await healthUpdate(round, record);
      continue;
    }
    // Every contender of a workload runs in the same round, one after the other.
    // At concurrency 16, then each at its default concurrency (1), as the issue's reference figures were taken.
    for (const [label, env] of [
      ['concurrency 16', fromMemory],
      ['default concurrency (1)', { ...fromMemory, BENCH_CONCURRENCY: 1 }],
    ] as const) {
      for (const [name, run] of [
        ['this library, memory store', () => ours('memory', 'memory', env)],
        ['this library, Redis store', () => ours('memory', 'redis', env)],
        [
          'this library, SQLite store (the default)',
          () => ours('memory', 'sqlite', env),
        ],
        ['BullMQ, job per range', () => bullmq('memory', env)],
      ] as const) {
        const r = await run();
        record(
          `no-op, 10 ids a range, ${n(FROM_MEMORY)} ids from memory, ${label}`,
          name,
          'ranges/s',
          r.ranges / r.seconds,
        );
      }
    }
    // OpenTelemetry: an app without the API, with the API and no SDK (nothing recorded), with an SDK recording a span per range.
    for (const [name, otel] of [
      ['this library, without @opentelemetry/api', 'off'],
      ['this library, @opentelemetry/api, no SDK', ''],
      ['this library, OpenTelemetry SDK recording spans', 'sdk'],
    ] as const) {
      const r = await ours('memory', 'memory', {
        ...fromMemory,
        ...(otel && { BENCH_OTEL: otel }),
      });
      record(
        `no-op, 10 ids a range, ${n(FROM_MEMORY)} ids from memory, concurrency 16, tracing`,
        name,
        'ranges/s',
        r.ranges / r.seconds,
      );
    }
    {
      // No rangeSize, so ctx.limit adapts (up to 10,000), and a loader that ignores it and returns 10 ids.
      const r = await ours('memory', 'memory', {
        BENCH_ROWS: FROM_MEMORY,
        BENCH_WORKERS: 2,
        BENCH_LOADER_IDS: 10,
      });
      record(
        `no-op, 10 ids a range, ${n(FROM_MEMORY)} ids from memory, default concurrency (1)`,
        'loader ignoring ctx.limit, this library, memory store',
        'ranges/s',
        r.ranges / r.seconds,
      );
    }
    for (const [name, run] of [
      ['this library, memory store', () => ours('keyset', 'memory', coord)],
      ['this library, Redis store', () => ours('keyset', 'redis', coord)],
      // The same job again in the same process: no worker start-up competes with the loader for the cores.
      [
        'this library, memory store, second run (warm workers)',
        () => ours('keyset', 'memory', { ...coord, BENCH_MODE: 'warm' }),
      ],
      ['BullMQ, job per range', () => bullmq('keyset', coord)],
      ['plain keyset loop', () => plain('keyset', coord)],
    ] as const) {
      const r = await run();
      record(
        `no-op, 10 ids a range, keyset loader on PostgreSQL, ${n(ROWS)} rows`,
        name,
        'ranges/s',
        r.ranges / r.seconds,
      );
    }
    {
      // Partitions: the loader with 5 ms per call (pg_sleep), second run in the same process (no worker start-up).
      const slow = {
        ...coord,
        BENCH_TABLE: SLOW_TABLE,
        BENCH_LOADER_SLEEP_MS: 5,
        BENCH_MODE: 'warm',
      };
      const W = `no-op, 10 ids a range, keyset loader with 5 ms per call, ${n(SLOW_ROWS)} rows, second run`;
      for (const [name, job, env] of [
        ['this library, 1 partition', 'keyset-slow', slow],
        [
          'this library, 8 partitions',
          'keyset-parts',
          { ...slow, BENCH_PARTITIONS: 8 },
        ],
      ] as const) {
        const r = await ours(job, 'memory', env);
        record(W, name, 'ranges/s', r.ranges / r.seconds);
      }
      // Hosts on one Redis, 8 partitions, and the loads each setup throws away after losing the cursor race.
      const H = `no-op, 10 ids a range, keyset loader with 5 ms per call, ${n(HOSTS_ROWS)} rows, Redis store`;
      // 4 loader calls at once per host, so a second host adds loader capacity (8 partitions take 8 at once); one worker
      // per host (no-op handlers), as every host here shares the same 2 cores.
      const onHosts = {
        ...coord,
        BENCH_WORKERS: 1,
        BENCH_TABLE: HOSTS_TABLE,
        BENCH_LOADER_SLEEP_MS: 5,
        BENCH_LOADER_CONCURRENCY: 4,
      };
      for (const [name, count, job, env] of [
        [
          'this library, 8 partitions, 1 host',
          1,
          'keyset-parts',
          { ...onHosts, BENCH_PARTITIONS: 8 },
        ],
        [
          'this library, 8 partitions, 2 hosts',
          2,
          'keyset-parts',
          { ...onHosts, BENCH_PARTITIONS: 8 },
        ],
        [
          'this library, 8 partitions, 3 hosts',
          3,
          'keyset-parts',
          { ...onHosts, BENCH_PARTITIONS: 8 },
        ],
        // One cursor: 2 of 3 loads lose the race, so a smaller table keeps this one short.
        [
          'this library, 1 partition, 3 hosts',
          3,
          'keyset-slow',
          { ...onHosts, BENCH_TABLE: SLOW_TABLE },
        ],
      ] as const) {
        const r = await hosts(count, job, env);
        record(
          env.BENCH_TABLE === SLOW_TABLE
            ? `no-op, 10 ids a range, keyset loader with 5 ms per call, ${n(SLOW_ROWS)} rows, Redis store`
            : H,
          name,
          'ranges/s',
          r.ranges / r.seconds,
        );
        if (count === 3)
          record(
            'loads thrown away after losing the cursor race, 3 hosts on one Redis',
            name.replace(', 3 hosts', ''),
            '%',
            r.loads ? ((r.loads - r.ranges) / r.loads) * 100 : 0,
          );
      }
      // No added delay: 4 partitions against the plain single-process keyset loop (measured above).
      const r = await ours('keyset-parts', 'memory', {
        ...coord,
        BENCH_PARTITIONS: 4,
      });
      record(
        `no-op, 10 ids a range, keyset loader on PostgreSQL, ${n(ROWS)} rows`,
        'this library, memory store, 4 partitions',
        'ranges/s',
        r.ranges / r.seconds,
      );
    }
    for (const [name, run] of [
      [
        'this library, defaults',
        () => ours('update', 'memory', { BENCH_WORKERS: 2 }),
      ],
      // The same in the same round with the SQLite store, whose file every process of a host shares.
      [
        'this library, SQLite store (the default)',
        () => ours('update', 'sqlite', { BENCH_WORKERS: 2 }),
      ],
      // The same without forking: shows what starting two workers costs.
      [
        'this library, workers: 0 (inline)',
        () => ours('update', 'memory', { BENCH_WORKERS: 0 }),
      ],
      [
        'BullMQ, job per range',
        () => bullmq('update', { BENCH_RANGE: 1000, BENCH_WORKERS: 2 }),
      ],
      ['plain keyset loop', () => plain('update', { BENCH_RANGE: 1000 })],
      ['one set-based UPDATE', () => plain('set-update', {})],
    ] as const) {
      const r = await run();
      record(
        `UPDATE … WHERE id = ANY($1), ${n(ROWS)} rows`,
        name,
        's',
        r.seconds,
      );
    }
    {
      // The same UPDATE as a second run in the same process: the first run's workers serve it.
      const r = await ours('update', 'memory', {
        BENCH_WORKERS: 2,
        BENCH_MODE: 'warm',
      });
      record(
        `UPDATE … WHERE id = ANY($1), ${n(ROWS)} rows`,
        'this library, defaults, second run (warm workers)',
        's',
        r.seconds,
      );
      const cold = r.output?.match(/^RUN_AT (\S+) /m)?.[1] ?? '';
      record(
        'run() to the first handler call',
        'this library, first run (forks 2 workers)',
        'ms',
        firstCallMs(r.output ?? '', cold),
      );
      record(
        'run() to the first handler call',
        'this library, second run in the same process (warm workers)',
        'ms',
        firstCallMs(r.output ?? '', r.runId ?? ''),
      );
    }
    await fencedUpdate(round, record);
    await healthUpdate(round, record);
    for (const [name, run] of [
      [
        'this library, defaults (cold)',
        () =>
          ours('update', 'memory', {
            BENCH_WORKERS: 2,
            BENCH_TABLE: BIG_TABLE,
          }),
      ],
      [
        'one set-based UPDATE',
        () => plain('set-update', { BENCH_TABLE: BIG_TABLE }),
      ],
    ] as const) {
      const r = await run();
      record(
        `UPDATE … WHERE id = ANY($1), ${n(BIG_ROWS)} rows`,
        name,
        's',
        r.seconds,
      );
    }
    {
      // A cron tick after the job caught up: the second run() has nothing new to do.
      const r = await ours('memory', 'memory', {
        BENCH_ROWS: SMOKE ? 2000 : 20_000,
        BENCH_WORKERS: 2,
        BENCH_MODE: 'tick',
      });
      if (r.forked !== 0)
        throw new Error(`an empty run forked ${r.forked} workers`);
      record(
        'empty run (no new rows, a cron tick)',
        'this library, run() to resolve',
        'ms',
        r.seconds * 1000,
      );
      record(
        'empty run (no new rows, a cron tick)',
        'this library, primary RSS added',
        'MB',
        (r.rssAdded ?? 0) / 1024 / 1024,
      );
    }
    for (const workers of [1, 2]) {
      const r = await ours('cpu', 'memory', {
        BENCH_WORKERS: workers,
        BENCH_ROWS: cpuRounds,
        BENCH_RANGE: 10,
        BENCH_CPU_ROUNDS: 2000,
      });
      record(
        'CPU-bound handler',
        `this library, ${workers} worker${workers > 1 ? 's' : ''}`,
        's',
        r.seconds,
      );
    }
    // The machine's own ceiling: the same hashing in plain processes, no coordination.
    for (const processes of [1, 2]) {
      const r = await node('peers/plain-hash.js', [String(processes)], {
        BENCH_ROWS: cpuRounds,
        BENCH_CPU_ROUNDS: 2000,
      });
      record(
        'CPU-bound handler',
        `plain processes, ${processes}`,
        's',
        r.seconds,
      );
    }
    for (const ids of SMOKE ? [2000, 20_000] : [200_000, 2_000_000]) {
      const r = await ours('memory', 'memory', {
        BENCH_ROWS: ids,
        BENCH_RANGE: 1000,
        BENCH_WORKERS: 2,
      });
      record(
        'primary peak RSS',
        `this library, ${ids.toLocaleString('en')} ids`,
        'MB',
        (r.rss ?? 0) / 1024 / 1024,
      );
    }
  }
  report(rows);
}

function report(rows: Row[]): void {
  const m = (w: string, c: string) =>
    median(
      rows.find((r) => r.workload.startsWith(w) && r.contender.startsWith(c))
        ?.values ?? [NaN],
    );
  const fmt = (n: number, metric: string) =>
    metric === 'ranges/s' ? Math.round(n).toLocaleString('en') : n.toFixed(2);
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${ROUNDS} rounds, medians`;
  const table = [
    '| workload | contender | median | unit | runs |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.workload} | ${r.contender} | ${fmt(median(r.values), r.metric)} | ${r.metric} | ${r.values.map((v) => fmt(v, r.metric)).join(', ')} |`,
    ),
  ];
  const C16 = `no-op, 10 ids a range, ${n(FROM_MEMORY)} ids from memory, concurrency 16`;
  const C1 = `no-op, 10 ids a range, ${n(FROM_MEMORY)} ids from memory, default`;
  const UPD = `UPDATE … WHERE id = ANY($1), ${n(ROWS)} rows`;
  const HOSTS = `no-op, 10 ids a range, keyset loader with 5 ms per call, ${n(HOSTS_ROWS)} rows, Redis store`;
  const UPD_BIG = `UPDATE … WHERE id = ANY($1), ${n(BIG_ROWS)} rows`;
  const targets: [string, number, string, (x: number) => boolean][] = [
    [
      'memory store vs BullMQ, ids from memory, concurrency 16',
      m(C16, 'this library, memory') / m(C16, 'BullMQ'),
      '>= 12x',
      (x) => x >= 12,
    ],
    [
      'Redis store vs BullMQ, ids from memory, concurrency 16',
      m(C16, 'this library, Redis') / m(C16, 'BullMQ'),
      '>= 6x',
      (x) => x >= 6,
    ],
    [
      'memory store vs BullMQ, ids from memory, defaults',
      m(C1, 'this library, memory') / m(C1, 'BullMQ'),
      '>= 12x',
      (x) => x >= 12,
    ],
    [
      'Redis store vs BullMQ, ids from memory, defaults',
      m(C1, 'this library, Redis') / m(C1, 'BullMQ'),
      '>= 6x',
      (x) => x >= 6,
    ],
    [
      'SQLite store vs memory store, ids from memory, concurrency 16',
      m(C16, 'this library, SQLite') / m(C16, 'this library, memory'),
      '>= 0.8x',
      (x) => x >= 0.8,
    ],
    [
      'SQLite store vs memory store, ids from memory, defaults',
      m(C1, 'this library, SQLite') / m(C1, 'this library, memory'),
      '>= 0.8x',
      (x) => x >= 0.8,
    ],
    [
      'loader ignoring ctx.limit vs rangeSize: 10, memory store, defaults',
      m(C1, 'loader ignoring') / m(C1, 'this library, memory'),
      '>= 0.90',
      (x) => x >= 0.9,
    ],
    [
      'memory store vs plain loop, keyset loader',
      m('no-op, 10 ids a range, keyset', 'this library, memory') /
        m('no-op, 10 ids a range, keyset', 'plain'),
      '>= 0.90',
      (x) => x >= 0.9,
    ],
    [
      'memory store, second run (warm workers) vs plain loop, keyset loader',
      m('no-op, 10 ids a range, keyset', 'this library, memory store, second') /
        m('no-op, 10 ids a range, keyset', 'plain'),
      '>= 0.90',
      (x) => x >= 0.9,
    ],
    [
      'Redis store vs plain loop, keyset loader',
      m('no-op, 10 ids a range, keyset', 'this library, Redis') /
        m('no-op, 10 ids a range, keyset', 'plain'),
      '>= 0.90',
      (x) => x >= 0.9,
    ],
    [
      'UPDATE, defaults vs one set-based UPDATE (time)',
      m('UPDATE', 'this library, defaults') / m('UPDATE', 'one set-based'),
      '<= 1.3x',
      (x) => x <= 1.3,
    ],
    [
      'UPDATE, SQLite store vs memory store, defaults (time)',
      m(UPD, 'this library, SQLite') / m(UPD, 'this library, defaults'),
      '<= 1.25x',
      (x) => x <= 1.25,
    ],
    [
      'keyset loader with 5 ms per call: 8 partitions vs 1 (second run)',
      m(
        'no-op, 10 ids a range, keyset loader with 5 ms per call, ' +
          n(SLOW_ROWS),
        'this library, 8 partitions',
      ) /
        m(
          'no-op, 10 ids a range, keyset loader with 5 ms per call, ' +
            n(SLOW_ROWS),
          'this library, 1 partition',
        ),
      '>= 6x',
      (x) => x >= 6,
    ],
    [
      'keyset loader with 5 ms per call, 8 partitions on Redis: 2 hosts vs 1',
      m(HOSTS, 'this library, 8 partitions, 2 hosts') /
        m(HOSTS, 'this library, 8 partitions, 1 host'),
      '>= 1.7x',
      (x) => x >= 1.7,
    ],
    [
      'keyset loader, no delay: 4 partitions vs plain loop',
      m(
        'no-op, 10 ids a range, keyset',
        'this library, memory store, 4 partitions',
      ) / m('no-op, 10 ids a range, keyset', 'plain'),
      '>= 1.3x',
      (x) => x >= 1.3,
    ],
    [
      'loads thrown away, 3 hosts, 8 partitions (%)',
      m('loads thrown away', 'this library, 8 partitions'),
      '<= 1',
      (x) => x <= 1,
    ],
    [
      'UPDATE, second run (warm workers) vs one set-based UPDATE (time)',
      m(UPD, 'this library, defaults, second run') / m(UPD, 'one set-based'),
      '<= 1.2x',
      (x) => x <= 1.2,
    ],
    [
      `UPDATE ${n(BIG_ROWS)} rows, defaults (cold) vs one set-based UPDATE (time)`,
      m(UPD_BIG, 'this library, defaults') / m(UPD_BIG, 'one set-based'),
      '<= 1.2x',
      (x) => x <= 1.2,
    ],
    [
      'UPDATE in a transaction per range: ctx.fence(client) vs no fence (time)',
      m(FENCED_UPDATE, 'this library, defaults, ctx.fence') /
        m(FENCED_UPDATE, 'this library, defaults, no fence'),
      '<= 1.10x',
      (x) => x <= 1.1,
    ],
    [
      `UPDATE ${n(ROWS)} rows: postgresHealth on vs off (time)`,
      m(HEALTH_UPDATE, 'this library, defaults, postgresHealth') /
        m(HEALTH_UPDATE, 'this library, defaults, no health'),
      '<= 1.03x',
      (x) => x <= 1.03,
    ],
    [
      'empty run (a cron tick with nothing new): run() to resolve, ms',
      m('empty run', 'this library, run() to resolve'),
      '<= 50',
      (x) => x <= 50,
    ],
    [
      'second run in the same process: run() to first handler call, ms',
      m('run() to the first handler call', 'this library, second run'),
      '<= 20',
      (x) => x <= 20,
    ],
    [
      'CPU-bound, 2 workers vs 1 (speed-up)',
      m('CPU', 'this library, 1 worker') / m('CPU', 'this library, 2 workers'),
      '>= 1.85x',
      (x) => x >= 1.85,
    ],
    [
      "CPU-bound, 2 vs 1: share of plain processes' speed-up",
      m('CPU', 'this library, 1 worker') /
        m('CPU', 'this library, 2 workers') /
        (m('CPU', 'plain processes, 1') / m('CPU', 'plain processes, 2')),
      '>= 0.90',
      (x) => x >= 0.9,
    ],
    [
      'primary RSS, 10x more ids (growth)',
      m('primary peak RSS', 'this library, 2,') /
        m('primary peak RSS', 'this library, 200') -
        1 ||
        m('primary peak RSS', 'this library, 20,') /
          m('primary peak RSS', 'this library, 2,000') -
          1,
      '<= 20%',
      (x) => x <= 0.2,
    ],
  ];
  const ratios = [
    '| target | measured | wanted | met |',
    '|---|---|---|---|',
    ...targets
      // BENCH_ONLY: the ratios of the workloads that ran.
      .filter(([, x]) => !ONLY || Number.isFinite(x))
      .map(
        ([name, x, want, ok]) =>
          `| ${name} | ${name.includes('RSS') ? `${(x * 100).toFixed(1)}%` : x.toFixed(2)} | ${want} | ${ok(x) ? 'yes' : 'no'} |`,
      ),
  ];
  const md = [`Machine: ${machine}.`, '', ...table, '', ...ratios, ''].join(
    '\n',
  );
  process.stdout.write(`\n${md}\n`);
  if (SMOKE || ONLY) return;
  writeFileSync(join(__dirname, '../../bench/results.md'), md);
  writeFileSync(
    join(__dirname, '../../bench/results.json'),
    JSON.stringify({ machine, rows }, null, 2),
  );
  writeFileSync(
    join(__dirname, '../../bench/results.svg'),
    chart(
      rows
        .filter((r) => r.metric === 'ranges/s')
        .map((r) => ({
          group: r.workload,
          label: r.contender,
          value: median(r.values),
        })),
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
