import { OnApplicationShutdown } from '@nestjs/common';
import { Pool } from 'pg';
import { Db } from './db';

/** {@link Db} on PostgreSQL through a `pg` pool (one pool per process). */
export class PostgresDb extends Db implements OnApplicationShutdown {
  private readonly pool: Pool;

  constructor(connectionString: string) {
    super();
    this.pool = new Pool({ connectionString });
  }

  get description(): string {
    const url = new URL(this.pool.options.connectionString ?? '');
    return `PostgreSQL ${url.host}${url.pathname}`;
  }

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const result = await this.pool.query(numbered(sql), params);
    return result.rows as T[];
  }

  async execute(sql: string, params: unknown[] = []): Promise<number> {
    const result = await this.pool.query(numbered(sql), params);
    return result.rowCount ?? 0;
  }

  onApplicationShutdown(): Promise<void> {
    return this.pool.end();
  }
}

/** `?` to `$1, $2, ...`; the samples' SQL has no `?` inside string literals. */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
