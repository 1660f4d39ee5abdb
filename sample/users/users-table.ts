import { Injectable, Logger } from '@nestjs/common';
import { Db } from '../database';

/** How many rows were visited once, never, or more than once. */
export interface UsersCheck {
  total: number;
  once: number;
  missed: number;
  duplicated: number;
}

/**
 * Creates, seeds and checks the `users` table. Only a primary calls it:
 * workers just open the database.
 */
@Injectable()
export class UsersTable {
  private readonly logger = new Logger(UsersTable.name);

  constructor(private readonly db: Db) {}

  /** Drops the table and seeds `count` fresh rows, all with `processed = 0`. */
  async reset(count: number): Promise<void> {
    await this.db.execute('DROP TABLE IF EXISTS users');
    await this.create();
    await this.append(count);
    this.logger.log(`Seeded ${count} users in ${this.db.description}`);
  }

  /**
   * Keeps an existing table as it is (another host may be working on it);
   * creates and seeds it only when it is missing or empty.
   */
  async ensure(count: number): Promise<void> {
    await this.create();
    if ((await this.count()) === 0) await this.append(count);
    this.logger.log(
      `Using ${await this.count()} users in ${this.db.description}`,
    );
  }

  /** Adds `count` rows after the highest id: what the next run picks up. */
  async append(count: number): Promise<void> {
    if (count < 1) return; // the CTE below always yields its first row
    // A recursive CTE generates the rows inside the database, in one
    // statement that SQLite and PostgreSQL both understand.
    await this.db.execute(
      `WITH RECURSIVE seq(n) AS (
         SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?
       )
       INSERT INTO users (id, email)
       SELECT base.max_id + n, 'user' || (base.max_id + n) || '@example.com'
       FROM seq, (SELECT COALESCE(MAX(id), 0) AS max_id FROM users) base`,
      [count],
    );
  }

  /** Number of rows in the table. */
  async count(): Promise<number> {
    const [row] = await this.db.query<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM users',
    );
    return Number(row.n);
  }

  /** Counts rows by how often the handler visited them. */
  async check(): Promise<UsersCheck> {
    const [row] = await this.db.query<
      Record<keyof UsersCheck, number | string | null>
    >(
      `SELECT COUNT(*) AS total,
              SUM(CASE WHEN processed = 1 THEN 1 ELSE 0 END) AS once,
              SUM(CASE WHEN processed = 0 THEN 1 ELSE 0 END) AS missed,
              SUM(CASE WHEN processed > 1 THEN 1 ELSE 0 END) AS duplicated
       FROM users`,
    );
    // PostgreSQL returns COUNT and SUM as strings (bigint), and SUM of no rows as null.
    return {
      total: Number(row.total ?? 0),
      once: Number(row.once ?? 0),
      missed: Number(row.missed ?? 0),
      duplicated: Number(row.duplicated ?? 0),
    };
  }

  private async create(): Promise<void> {
    await this.db.execute(
      `CREATE TABLE IF NOT EXISTS users (
         id INTEGER PRIMARY KEY,
         email TEXT NOT NULL,
         processed INTEGER NOT NULL DEFAULT 0,
         processed_by INTEGER
       )`,
    );
  }
}
