import { OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import { Db } from './db';

/** {@link Db} on a SQLite file, shared by the primary and every worker process. */
export class SqliteDb extends Db implements OnApplicationShutdown {
  private readonly db: Database.Database;

  constructor(readonly file: string) {
    super();
    // Several processes write at once: WAL lets readers and one writer work
    // side by side, and a writer that finds the lock taken waits instead of
    // failing with SQLITE_BUSY.
    this.db = new Database(file, { timeout: 30_000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
  }

  get description(): string {
    return `SQLite ${this.file}`;
  }

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.db.prepare(sql).all(...params) as T[];
  }

  async execute(sql: string, params: unknown[] = []): Promise<number> {
    return this.db.prepare(sql).run(...params).changes;
  }

  onApplicationShutdown(): void {
    this.db.close();
  }
}
