export * from './users-backfill';
export * from './users-table';
export * from './users.module';
