export * from './database.module';
export * from './db';
