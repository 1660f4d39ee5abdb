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
  RangePartitions,
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
const SLEEP_MS = Number(env('BENCH_LOADER_SLEEP_MS', '0'));
const PARTITIONS = Number(env('BENCH_PARTITIONS', '1'));
/** The 'update-tx' job calls ctx.fence(client) first in its transaction. */
const FENCED = process.env.BENCH_FENCE === '1';

/** The benchmark's workloads, written the way a user writes a job. */
@Injectable()
export class BenchJobs implements OnModuleDestroy {
  // Enough connections for loaderConcurrency (8) loader calls at once, plus the handlers'.
  private readonly pool = process.env.DATABASE_URL
    ? new Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
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

  /** Keyset pages whose query also sleeps BENCH_LOADER_SLEEP_MS (a busy database's round trip); no-op handler. */
  @RangeLoader('keyset-slow')
  keysetSlow(lastId: ID | null, ctx: LoadContext): Promise<ID[]> {
    return this.ids(lastId, ctx.limit, null, SLEEP_MS);
  }

  @RangeHandler('keyset-slow')
  noop3(): void {}

  /** The same in BENCH_PARTITIONS partitions. */
  @RangePartitions('keyset-parts', { count: PARTITIONS })
  bounds(): Promise<{ min: number | null; max: number | null }> {
    return this.pool!.query(
      `SELECT min(id) AS min, max(id) AS max FROM ${TABLE}`,
    ).then(({ rows: [r] }) => ({
      min: r.min === null ? null : Number(r.min),
      max: r.max === null ? null : Number(r.max),
    }));
  }

  @RangeLoader('keyset-parts')
  keysetParts(lastId: ID | null, ctx: LoadContext): Promise<ID[]> {
    return this.ids(lastId, ctx.limit, ctx.partition?.upTo ?? null, SLEEP_MS);
  }

  @RangeHandler('keyset-parts')
  noop4(): void {}

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

  /** The same UPDATE in a transaction of its own per range; BENCH_FENCE=1: fenced, as docs/exactly-once.md shows. */
  @RangeLoader('update-tx')
  updateTxIds(lastId: ID | null, ctx: LoadContext): Promise<ID[]> {
    return this.ids(lastId, ctx.limit);
  }

  @RangeHandler('update-tx')
  async updateTx({ idsRange }: Range, ctx: RangeContext): Promise<void> {
    const client = await this.pool!.connect();
    try {
      await client.query('BEGIN');
      if (FENCED && !(await ctx.fence(client))) {
        await client.query('COMMIT'); // an earlier attempt committed this range
        return;
      }
      await client.query(
        `UPDATE ${TABLE} SET processed = processed + 1 WHERE id = ANY($1::bigint[])`,
        [idsRange],
      );
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
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

  /** Loader calls that returned ids (a load thrown away after losing the cursor race is called again). */
  loads = 0;

  private async ids(
    lastId: ID | null,
    limit: number,
    upTo: ID | null = null,
    sleepMs = 0,
  ): Promise<ID[]> {
    const { rows } = await this.pool!.query(
      sleepMs > 0
        ? `SELECT id FROM ${TABLE}, pg_sleep($4::float / 1000) WHERE id > $1 AND ($3::bigint IS NULL OR id <= $3) ORDER BY id LIMIT $2`
        : `SELECT id FROM ${TABLE} WHERE id > $1 AND ($3::bigint IS NULL OR id <= $3) ORDER BY id LIMIT $2`,
      sleepMs > 0
        ? [lastId ?? 0, limit, upTo, sleepMs]
        : [lastId ?? 0, limit, upTo],
    );
    if (rows.length) this.loads++;
    return rows.map((r) => r.id as string);
  }

  async onModuleDestroy(): Promise<void> {
    await this.pool?.end();
  }
}
