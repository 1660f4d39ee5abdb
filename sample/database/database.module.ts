import { Module } from '@nestjs/common';
import { resolve } from 'node:path';
import { Db } from './db';
import { PostgresDb } from './postgres.db';
import { SqliteDb } from './sqlite.db';

/**
 * Provides {@link Db}: PostgreSQL when `DATABASE_URL` is a postgres:// URL,
 * otherwise SQLite on `SAMPLE_DB` (default `sample.db` in the working
 * directory, which forked workers share with their primary).
 */
@Module({
  providers: [
    {
      provide: Db,
      useFactory: (): Db => {
        const url = process.env.DATABASE_URL;
        if (url && /^postgres(ql)?:\/\//.test(url)) return new PostgresDb(url);
        return new SqliteDb(resolve(process.env.SAMPLE_DB ?? 'sample.db'));
      },
    },
  ],
  exports: [Db],
})
export class DatabaseModule {}
