import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ParallelWorkerModule } from 'nestjs-parallel-worker';
import { ParallelWorkerDashboardModule } from 'nestjs-parallel-worker/dashboard';
import {
  flagFromEnv,
  parallelWorkerOptions,
  REDIS,
  RedisModule,
  SampleLoggerModule,
} from '../common';
import { DatabaseModule } from '../database';
import { UsersModule } from '../users';
import { UsersController } from './users.controller';
import { DigestJob } from './digest.job';
import { UsersCron } from './users.cron';

/**
 * The HTTP sample: the `users` job of the standalone sample, started by a
 * cron (or `POST /run`), and `digest`, started from the page with params,
 * watched and steered on the dashboard at `/jobs`.
 */
@Module({
  imports: [
    SampleLoggerModule,
    ScheduleModule.forRoot(),
    // Global, so the dashboard's controller can inject ParallelWorker.
    ParallelWorkerModule.forRootAsync({
      isGlobal: true,
      imports: [RedisModule],
      inject: [REDIS],
      useFactory: parallelWorkerOptions,
    }),
    // GET /jobs. The buttons are on unless SAMPLE_DASHBOARD_CONTROLS=0; in a
    // real app, guard the page (guards: [AdminGuard]).
    ParallelWorkerDashboardModule.register({
      path: 'jobs',
      title: 'nestjs-parallel-worker sample',
      controls: flagFromEnv('SAMPLE_DASHBOARD_CONTROLS', true),
    }),
    UsersModule,
    DatabaseModule,
  ],
  controllers: [UsersController],
  providers: [UsersCron, DigestJob],
})
export class CronAppModule {}
