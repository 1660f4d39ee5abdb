import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database';
import { UsersBackfill } from './users-backfill';
import { UsersTable } from './users-table';

/** The `users` job and its table, shared by both samples. */
@Module({
  imports: [DatabaseModule],
  providers: [UsersBackfill, UsersTable],
  exports: [UsersTable],
})
export class UsersModule {}
