import { type INestApplication, Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ParallelWorker } from 'nestjs-parallel-worker';
import { Logger } from 'nestjs-pino';
import { flagFromEnv, intFromEnv } from '../common';
import { UsersTable } from '../users';
import { CronAppModule } from './app.module';
import { DigestJob } from './digest.job';

/** Express by default; Fastify with `SAMPLE_HTTP=fastify` (loaded only then). */
async function createApp(http: string): Promise<INestApplication> {
  if (http === 'express')
    return NestFactory.create(CronAppModule, { bufferLogs: true });
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  return NestFactory.create(CronAppModule, new FastifyAdapter(), {
    bufferLogs: true,
  });
}

async function bootstrap(): Promise<void> {
  const http = process.env.SAMPLE_HTTP || 'express';
  if (http !== 'express' && http !== 'fastify')
    throw new Error(`SAMPLE_HTTP must be express or fastify, got "${http}"`);
  const app = await createApp(http);
  app.useLogger(app.get(Logger));
  app.flushLogs(); // a worker never calls init(), which would flush them

  // A worker forked by a cron-started run serves that run and exits;
  // it opens no port.
  if (ParallelWorker.isWorker()) {
    await app.get(ParallelWorker).run();
    return app.close();
  }

  // Unlike the standalone sample this keeps the table across restarts, since
  // a cursor kept in Redis (REDIS_URL) still points into it.
  await app.get(UsersTable).ensure(intFromEnv('SAMPLE_USERS', 100_000));
  await app.get(DigestJob).ensureTable();
  app.enableShutdownHooks();
  const port = intFromEnv('PORT', 3000);
  await app.listen(port);
  const controls = flagFromEnv('SAMPLE_DASHBOARD_CONTROLS', true);
  new NestLogger('CronSample').log(
    `Listening on http://localhost:${port} (${http}): dashboard GET /jobs (${controls ? 'with controls' : 'read-only'}), GET /status, POST /run, POST /users?count=1000`,
  );
}

void bootstrap();
