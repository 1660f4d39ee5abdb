import { Injectable } from '@nestjs/common';
import {
  RangeHandler,
  RangeLoader,
  RangeTotal,
  type ID,
  type LoadContext,
  type Range,
} from 'nestjs-parallel-worker';
import { intsFromEnv } from '../common/env';
import { Db, placeholders } from '../database';

/**
 * The job `users`: visit every row of `users` once and mark it processed.
 *
 * The loader runs in the primary and hands out ranges; the handler runs in
 * the worker processes, each of which bootstrapped this same app and so
 * has its own `Db`.
 */
@Injectable()
export class UsersBackfill {
  /** `SAMPLE_FAIL_IDS`: rows whose range always fails, to see retries and dead letters. */
  private readonly failIds = new Set(intsFromEnv('SAMPLE_FAIL_IDS'));

  constructor(private readonly db: Db) {}

  /** The next `ctx.limit` ids after the cursor, in order (keyset pagination). */
  @RangeLoader('users')
  async next(lastId: ID | null, ctx: LoadContext): Promise<ID[]> {
    const rows = await this.db.query<{ id: number }>(
      'SELECT id FROM users WHERE id > ? ORDER BY id LIMIT ?',
      [lastId ?? 0, ctx.limit],
    );
    return rows.map((row) => row.id);
  }

  /** How many rows a run handles: gives status() (and the CLI) percent and ETA. */
  @RangeTotal('users')
  async total(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(
      'SELECT COUNT(*) AS n FROM users',
    );
    return Number(row.n);
  }

  /**
   * A real write per row. `processed` counts visits, so the check at the end
   * of the sample can tell a missed row (0) from a duplicate (2 or more);
   * `processed_by` shows which worker process did it.
   */
  @RangeHandler('users')
  async handle({ idsRange }: Range): Promise<void> {
    // A range holding one of SAMPLE_FAIL_IDS fails every time, before it
    // writes anything: retried, then dead-lettered (`retryDead()` hands it
    // out again).
    const bad = idsRange.find((id) => this.failIds.has(Number(id)));
    if (bad !== undefined)
      throw new Error(`User ${bad} cannot be processed (SAMPLE_FAIL_IDS)`);
    await this.db.execute(
      `UPDATE users SET processed = processed + 1, processed_by = ?
       WHERE id IN (${placeholders(idsRange.length)})`,
      [process.pid, ...idsRange],
    );
    // SAMPLE_DELAY_MS slows each range down, to watch a run (or pause it) from the CLI.
    const delay = Number(process.env.SAMPLE_DELAY_MS ?? 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
