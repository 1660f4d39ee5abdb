import { Pool } from 'pg';

/**
 * The peer "plain single-process keyset loop": load the next ids after the
 * cursor, handle them, repeat. `set-update` is the single set-based UPDATE.
 * Run as `node plain-loop.js <workload>`; prints `RESULT {"ranges","seconds"}`.
 */
const [, , workload = 'keyset'] = process.argv;
const RANGE = Number(process.env.BENCH_RANGE ?? 10);
const TABLE = process.env.BENCH_TABLE ?? 'bench_items';

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  const started = Date.now();
  let ranges = 0;
  if (workload === 'set-update') {
    await pool.query(`UPDATE ${TABLE} SET processed = processed + 1`);
    ranges = 1;
  } else {
    let cursor: string | number = 0;
    for (;;) {
      const ids: string[] = (
        await pool.query(
          `SELECT id FROM ${TABLE} WHERE id > $1 ORDER BY id LIMIT $2`,
          [cursor, RANGE],
        )
      ).rows.map((r) => r.id as string);
      if (ids.length === 0) break;
      cursor = ids[ids.length - 1];
      if (workload === 'update')
        await pool.query(
          `UPDATE ${TABLE} SET processed = processed + 1 WHERE id = ANY($1::bigint[])`,
          [ids],
        );
      ranges++;
    }
  }
  const seconds = (Date.now() - started) / 1000;
  await pool.end();
  process.stdout.write(`RESULT ${JSON.stringify({ ranges, seconds })}\n`);
}
void main();
