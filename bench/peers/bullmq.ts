import { fork } from 'node:child_process';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Pool } from 'pg';

/**
 * The peer "BullMQ, one job per range": a producer enqueues one job per range
 * (its ids in the job data) while worker processes consume them. Run as
 * `node bullmq.js <workload>`; prints `RESULT {"ranges","seconds"}`.
 */
const [, , workload = 'memory', role = 'producer'] = process.argv;
const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const RANGE = Number(process.env.BENCH_RANGE ?? 10);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 1);
const TABLE = process.env.BENCH_TABLE ?? 'bench_items';
const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = {
  host: url.hostname,
  port: Number(url.port || 6379),
  maxRetriesPerRequest: null,
};
const queueName = process.env.BENCH_QUEUE ?? 'bench';

async function worker(): Promise<void> {
  const pool =
    workload === 'update'
      ? new Pool({ connectionString: process.env.DATABASE_URL, max: 2 })
      : undefined;
  const w = new Worker(
    queueName,
    async (job) => {
      if (pool)
        await pool.query(
          `UPDATE ${TABLE} SET processed = processed + 1 WHERE id = ANY($1::bigint[])`,
          [job.data.ids],
        );
    },
    {
      connection,
      concurrency: CONCURRENCY,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    },
  );
  process.on('message', async () => {
    await w.close();
    await pool?.end();
    process.exit(0);
  });
  await w.waitUntilReady();
  process.send?.('ready');
}

async function producer(): Promise<void> {
  const started = Date.now();
  const queue = new Queue(queueName, { connection });
  await queue.obliterate({ force: true });
  const events = new QueueEvents(queueName, { connection });
  await events.waitUntilReady();
  const children = Array.from({ length: WORKERS }, () =>
    fork(__filename, [workload, 'worker'], { env: process.env }),
  );
  let total = 0;
  let completed = 0;
  let producing = true;
  const done = new Promise<void>((resolve) => {
    events.on('completed', () => {
      if (++completed === total && !producing) resolve();
    });
  });
  const pool =
    workload === 'memory'
      ? undefined
      : new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  let cursor = 0;
  let batch: { name: string; data: { ids: number[] } }[] = [];
  for (;;) {
    let ids: number[];
    if (pool) {
      ids = (
        await pool.query(
          `SELECT id FROM ${TABLE} WHERE id > $1 ORDER BY id LIMIT $2`,
          [cursor, RANGE],
        )
      ).rows.map((r) => Number(r.id));
    } else {
      ids = Array.from(
        { length: Math.max(0, Math.min(RANGE, ROWS - cursor)) },
        (_, i) => cursor + i + 1,
      );
    }
    if (ids.length === 0) break;
    cursor = ids[ids.length - 1];
    batch.push({ name: 'range', data: { ids } });
    if (batch.length === 500) {
      total += batch.length;
      await queue.addBulk(batch);
      batch = [];
    }
  }
  total += batch.length;
  if (batch.length) await queue.addBulk(batch);
  producing = false;
  if (completed < total) await done;
  const seconds = (Date.now() - started) / 1000;
  for (const c of children) c.send('stop');
  await Promise.all(children.map((c) => new Promise((r) => c.on('exit', r))));
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await pool?.end();
  process.stdout.write(
    `RESULT ${JSON.stringify({ ranges: total, seconds })}\n`,
  );
}

void (role === 'worker' ? worker() : producer());
