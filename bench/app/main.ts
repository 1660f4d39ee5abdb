import 'reflect-metadata';
import './otel-switch';
import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import Redis from 'ioredis';
import {
  ParallelWorker,
  ParallelWorkerModule,
  postgresHealth,
  type RunSummary,
} from '../../lib';
import { BenchJobs } from './bench.jobs';

const num = (name: string) =>
  process.env[name] ? Number(process.env[name]) : undefined;

@Module({
  providers: [
    {
      provide: 'REDIS',
      useFactory: () =>
        process.env.REDIS_URL ? new Redis(process.env.REDIS_URL) : undefined,
    },
  ],
  exports: ['REDIS'],
})
class RedisModule implements OnApplicationShutdown {
  constructor(@Inject('REDIS') private readonly redis?: Redis) {}
  async onApplicationShutdown() {
    await this.redis?.quit();
  }
}

@Module({
  imports: [
    ParallelWorkerModule.forRootAsync({
      imports: [RedisModule],
      inject: ['REDIS'],
      useFactory: (redis?: Redis) => ({
        // BENCH_SQLITE: the SQLite store on that file, else Redis when REDIS_URL is set, else memory.
        storage: process.env.BENCH_SQLITE
          ? `sqlite:${process.env.BENCH_SQLITE}`
          : (redis ?? 'memory'),
        storageKey: process.env.BENCH_PREFIX,
        workers: num('BENCH_WORKERS') ?? 2,
        rangeSize: num('BENCH_RANGE'),
        targetRangeMs: num('BENCH_TARGET_MS'),
        concurrency: num('BENCH_CONCURRENCY'),
        prefetch: num('BENCH_PREFETCH'),
        loaderConcurrency: num('BENCH_LOADER_CONCURRENCY'),
        logging: { level: 'warn' },
        ...(process.env.BENCH_FENCE_TABLE && {
          fence: { table: process.env.BENCH_FENCE_TABLE },
        }),
        // BENCH_HEALTH=1: postgresHealth on the job's database, as docs/health.md shows (interval: the default unless BENCH_HEALTH_INTERVAL_MS).
        ...(process.env.BENCH_HEALTH === '1' && {
          health: [
            postgresHealth(process.env.DATABASE_URL as string, {
              tables: [process.env.BENCH_TABLE ?? 'bench_items'],
              maxReplicationLagMs: 5000,
              maxTransactionAgeMs: 600_000,
            }),
          ],
          healthIntervalMs: num('BENCH_HEALTH_INTERVAL_MS'),
        }),
      }),
    }),
  ],
  providers: [BenchJobs],
})
class BenchModule {}

/** Epoch time in ms with sub-ms precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

/**
 * One run of one workload; prints `RESULT <json>` with the summary, the
 * primary's peak RSS and the CPU seconds the primary used during the run.
 * BENCH_MODE=warm: a first run, then the measured second run (from the first
 * row again) in the same process; BENCH_MODE=tick: a first run, then the
 * measured second run with nothing new (a cron tick after the job caught up).
 * Both print `RUN_AT <runId> <ms>` when each run() is called (handlers print
 * `FIRST_CALL`, see bench.jobs.ts).
 */
async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(BenchModule, {
    logger: ['error', 'warn'],
  });
  const mode = process.env.BENCH_MODE;
  const job = process.env.BENCH_JOB ?? 'memory';
  const primary = !ParallelWorker.isWorker();
  let cold: RunSummary | undefined;
  if (mode && primary) {
    const at = now();
    cold = await app.get(ParallelWorker).run(job, { from: null });
    process.stdout.write(`RUN_AT ${cold.runId} ${at}\n`);
  }
  const rssBefore = process.memoryUsage().rss;
  let peak = process.memoryUsage().rss;
  const cpuBefore = process.cpuUsage();
  const sampler = setInterval(
    () => (peak = Math.max(peak, process.memoryUsage().rss)),
    50,
  );
  const at = now();
  const summary = await app
    .get(ParallelWorker)
    .run(job, mode === 'tick' || process.env.BENCH_JOIN ? {} : { from: null });
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpuBefore);
  if (primary)
    process.stdout.write(
      `RUN_AT ${summary.runId} ${at}\nRESULT ${JSON.stringify({ ...summary, rss: peak, rssAdded: process.memoryUsage().rss - rssBefore, cold, loads: app.get(BenchJobs).loads, primaryCpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`,
    );
  await app.close();
}
void main();
