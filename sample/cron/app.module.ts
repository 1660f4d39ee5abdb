import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ParallelWorkerModule } from 'nestjs-parallel-worker';
import {
  parallelWorkerOptions,
  REDIS,
  RedisModule,
  SampleLoggerModule,
} from '../common';
import { UsersModule } from '../users';
import { UsersController } from './users.controller';
import { UsersCron } from './users.cron';

/** The HTTP sample: the `users` job of the standalone sample, started by a cron. */
@Module({
  imports: [
    SampleLoggerModule,
    ScheduleModule.forRoot(),
    ParallelWorkerModule.forRootAsync({
      imports: [RedisModule],
      inject: [REDIS],
      useFactory: parallelWorkerOptions,
    }),
    UsersModule,
  ],
  controllers: [UsersController],
  providers: [UsersCron],
})
export class CronAppModule {}
