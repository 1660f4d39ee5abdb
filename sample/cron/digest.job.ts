import { Injectable } from '@nestjs/common';
import {
  RangeHandler,
  RangeLoader,
  RangePartitions,
  type ID,
  type LoadContext,
  type Range,
  type RangeContext,
} from 'nestjs-parallel-worker';
import { Db, placeholders } from '../database';

/** The params a `digest` run needs: `{"subject": "Your week"}`. */
function subjectGiven(params: Record<string, unknown>): true | string {
  return (
    (typeof params.subject === 'string' && params.subject.trim() !== '') ||
    'a digest needs a subject: {"subject": "Your week"}'
  );
}

/**
 * The job `digest`, a second job for the dashboard: it queues one digest
 * per user, with the subject the run is started with, into `digests`. No
 * cron starts it: start it from `/jobs` with params. Its ids are split into
 * 4 partitions, loaded at once, each with its own cursor and bar on the page.
 */
@Injectable()
export class DigestJob {
  constructor(private readonly db: Db) {}

  /** Creates `digests` when it is missing (the primary calls it at start). */
  async ensureTable(): Promise<void> {
    await this.db.execute(
      `CREATE TABLE IF NOT EXISTS digests (
         user_id INTEGER NOT NULL,
         subject TEXT NOT NULL,
         queued_by INTEGER
       )`,
    );
  }

  /** The users' ids in 4 equal parts; the last one runs on past today's highest id. */
  @RangePartitions('digest', { count: 4 })
  async partitions(): Promise<{ min: number; max: number }> {
    const [row] = await this.db.query<{ min: number; max: number }>(
      'SELECT MIN(id) AS min, MAX(id) AS max FROM users',
    );
    return { min: Number(row.min), max: Number(row.max) };
  }

  /** The next ids of one partition, `(cursor, upTo]`. */
  @RangeLoader('digest', { params: subjectGiven })
  async next(lastId: ID | null, { limit, partition }: LoadContext) {
    const upTo = partition?.upTo ?? null;
    const rows = await this.db.query<{ id: number }>(
      `SELECT id FROM users WHERE id > ?${upTo === null ? '' : ' AND id <= ?'} ORDER BY id LIMIT ?`,
      upTo === null ? [lastId ?? 0, limit] : [lastId ?? 0, upTo, limit],
    );
    return rows.map((row) => row.id);
  }

  @RangeHandler('digest')
  async handle({ idsRange }: Range, { params }: RangeContext): Promise<void> {
    await this.db.execute(
      `INSERT INTO digests (user_id, subject, queued_by)
       SELECT id, ?, ? FROM users WHERE id IN (${placeholders(idsRange.length)})`,
      [params!.subject, process.pid, ...idsRange],
    );
    // SAMPLE_DELAY_MS slows this job down too, to watch its partitions fill.
    const delay = Number(process.env.SAMPLE_DELAY_MS ?? 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
