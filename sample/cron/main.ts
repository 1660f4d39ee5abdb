import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ParallelWorker } from 'nestjs-parallel-worker';
import { Logger } from 'nestjs-pino';
import { intFromEnv } from '../common';
import { UsersTable } from '../users';
import { CronAppModule } from './app.module';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(CronAppModule, { bufferLogs: true });
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
  app.enableShutdownHooks();
  const port = intFromEnv('PORT', 3000);
  await app.listen(port);
  new NestLogger('CronSample').log(
    `Listening on http://localhost:${port}: GET /status, POST /users?count=1000`,
  );
}

void bootstrap();
