import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Pool } from 'pg';
import { burn } from '../burn';
import {
  type ID,
  type LoadContext,
  type Range,
  type RangeContext,
  RangeHandler,
  RangeLoader,
} from '../../lib';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;

/** Runs whose first handler call this process printed (BENCH_MODE). */
const called = new Set<string>();
/** Prints `FIRST_CALL <runId> <ms>` at the first handler call of each run in this process. */
const firstCall = (runId: string) => {
  if (!process.env.BENCH_MODE || called.has(runId)) return;
  called.add(runId);
  process.stdout.write(
    `FIRST_CALL ${runId} ${performance.timeOrigin + performance.now()}\n`,
  );
};
const ROWS = Number(env('BENCH_ROWS', '200000'));
const TABLE = env('BENCH_TABLE', 'bench_items');

/** The benchmark's workloads, written the way a user writes a job. */
@Injectable()
export class BenchJobs implements OnModuleDestroy {
  private readonly pool = process.env.DATABASE_URL
    ? new Pool({ connectionString: process.env.DATABASE_URL, max: 4 })
    : undefined;

  /** Ids from memory: measures coordination only. */
  @RangeLoader('memory')
  memoryIds(lastId: ID | null, ctx: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    // BENCH_LOADER_IDS: a loader written for the seed, returning that many ids whatever ctx.limit suggests.
    const n = Math.max(
      0,
      Math.min(
        Number(env('BENCH_LOADER_IDS', '0')) || ctx.limit,
        ROWS - from + 1,
      ),
    );
    return Array.from({ length: n }, (_, i) => from + i);
  }

  @RangeHandler('memory')
  noop(_range: Range, ctx: RangeContext): void {
    firstCall(ctx.runId);
  }

  /** Keyset pagination on PostgreSQL, no-op handler. */
  @RangeLoader('keyset')
  keyset(lastId: ID | null, ctx: LoadContext): Promise<ID[]> {
    return this.ids(lastId, ctx.limit);
  }

  @RangeHandler('keyset')
  noop2(): void {}

  /** Keyset loader and a set-based UPDATE per range. */
  @RangeLoader('update')
  updateIds(lastId: ID | null, ctx: LoadContext): Promise<ID[]> {
    return this.ids(lastId, ctx.limit);
  }

  @RangeHandler('update')
  async update({ idsRange }: Range, ctx: RangeContext): Promise<void> {
    firstCall(ctx.runId);
    await this.pool!.query(
      `UPDATE ${TABLE} SET processed = processed + 1 WHERE id = ANY($1::bigint[])`,
      [idsRange],
    );
  }

  /** Ids from memory, CPU-bound handler. */
  @RangeLoader('cpu')
  cpuIds(lastId: ID | null, ctx: LoadContext): number[] {
    return this.memoryIds(lastId, ctx);
  }

  @RangeHandler('cpu')
  cpu({ idsRange }: Range): void {
    for (let i = 0; i < idsRange.length; i++)
      burn(Number(env('BENCH_CPU_ROUNDS', '200')));
  }

  private async ids(lastId: ID | null, limit: number): Promise<ID[]> {
    const { rows } = await this.pool!.query(
      `SELECT id FROM ${TABLE} WHERE id > $1 ORDER BY id LIMIT $2`,
      [lastId ?? 0, limit],
    );
    return rows.map((r) => r.id as string);
  }

  async onModuleDestroy(): Promise<void> {
    await this.pool?.end();
  }
}
