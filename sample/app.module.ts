import { Module } from '@nestjs/common';
import { ParallelWorkerModule } from 'nestjs-parallel-worker';
import {
  parallelWorkerOptions,
  REDIS,
  RedisModule,
  SampleLoggerModule,
} from './common';
import { UsersModule } from './users';

/** The standalone sample: one job, `users`, run once from main.ts. */
@Module({
  imports: [
    SampleLoggerModule,
    ParallelWorkerModule.forRootAsync({
      imports: [RedisModule],
      inject: [REDIS],
      useFactory: parallelWorkerOptions,
    }),
    UsersModule,
  ],
})
export class AppModule {}
