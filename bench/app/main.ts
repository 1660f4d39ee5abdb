import 'reflect-metadata';
import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import Redis from 'ioredis';
import { ParallelWorker, ParallelWorkerModule } from '../../lib';
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
        storage: redis,
        storageKey: process.env.BENCH_PREFIX,
        workers: num('BENCH_WORKERS') ?? 2,
        rangeSize: num('BENCH_RANGE'),
        targetRangeMs: num('BENCH_TARGET_MS'),
        concurrency: num('BENCH_CONCURRENCY'),
        prefetch: num('BENCH_PREFETCH'),
        logging: { level: 'warn' },
      }),
    }),
  ],
  providers: [BenchJobs],
})
class BenchModule {}

/** One run of one workload; prints `RESULT <json>` with the summary, the primary's peak RSS and the CPU seconds the primary used during the run. */
async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(BenchModule, {
    logger: ['error', 'warn'],
  });
  let peak = process.memoryUsage().rss;
  const cpuBefore = process.cpuUsage();
  const sampler = setInterval(
    () => (peak = Math.max(peak, process.memoryUsage().rss)),
    50,
  );
  const summary = await app
    .get(ParallelWorker)
    .run(process.env.BENCH_JOB ?? 'memory', { from: null });
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpuBefore);
  if (!ParallelWorker.isWorker())
    process.stdout.write(
      `RESULT ${JSON.stringify({ ...summary, rss: peak, primaryCpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`,
    );
  await app.close();
}
void main();
