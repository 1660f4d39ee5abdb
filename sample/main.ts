import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ParallelWorker,
  RunFailedError,
  type RunSummary,
} from 'nestjs-parallel-worker';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { intFromEnv } from './common';
import { trackProgress } from './progress';
import { reportRun } from './summary';
import { UsersTable } from './users';

// This script runs twice over: as the primary, and again in every worker
// that the primary's run() forks. Only the primary seeds, shows progress
// and checks the result.
async function bootstrap(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.flushLogs();
  const worker = app.get(ParallelWorker);

  if (ParallelWorker.isWorker()) {
    await worker.run('users'); // handle ranges until the primary drains this worker
    return app.close();
  }

  // SAMPLE_SEED=0 joins an existing table and run (another host, a resume);
  // otherwise the table is re-created and the run starts from the first row.
  const fresh = process.env.SAMPLE_SEED !== '0';
  const users = app.get(UsersTable);
  if (fresh) await users.reset(intFromEnv('SAMPLE_USERS', 100_000));
  else await users.ensure(intFromEnv('SAMPLE_USERS', 100_000));

  const stopProgress = trackProgress(worker, 'users', await users.count());
  let summary: RunSummary;
  try {
    summary = await worker.run('users', fresh ? { from: null } : {});
  } catch (err) {
    if (!(err instanceof RunFailedError)) throw err;
    summary = err.summary;
    process.exitCode = 1;
    new NestLogger('Sample').error(err.message);
  } finally {
    await stopProgress();
  }

  const ok = reportRun(summary, await users.check());
  // A stopped run (Ctrl+C) leaves rows undone on purpose: not a failure.
  if (!ok && summary.status !== 'stopped') process.exitCode = 1;
  await app.close();
}

void bootstrap();
