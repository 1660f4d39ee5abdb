// Not from the README: the `./db.js` its Quick start imports (the README leaves it to
// the app), written for this ESM app ("type": "module", nodenext): `pg` is imported
// through its ESM entry. A pg Pool on DATABASE_URL; test/apps/run.sh gives each run its
// own schema through PGOPTIONS='-c search_path=…', so the README's `users` is a fresh table.
import { Injectable, type OnApplicationShutdown } from '@nestjs/common'
import { Pool } from 'pg'

@Injectable()
export class Db implements OnApplicationShutdown {
  private readonly pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 })

  async query<T = unknown>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[]
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end()
  }
}
