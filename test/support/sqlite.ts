import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh SQLite file with `items(id, processed)` and `rows` rows. */
export function createSqliteItems(rows: number): string {
  const file = join(mkdtempSync(join(tmpdir(), 'pw-test-')), 'items.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE items (id INTEGER PRIMARY KEY, processed INTEGER NOT NULL DEFAULT 0)',
  );
  const insert = db.prepare('INSERT INTO items (id) VALUES (?)');
  db.transaction(() => {
    for (let id = 1; id <= rows; id++) insert.run(id);
  })();
  db.close();
  return file;
}

/** How many rows were processed how many times, and which ids were processed more than once. */
export function sqliteCounts(file: string): RowCounts {
  const db = new Database(file, { readonly: true });
  try {
    const byTimes = db
      .prepare('SELECT processed, COUNT(*) AS n FROM items GROUP BY processed')
      .all() as { processed: number; n: number }[];
    const dup = db
      .prepare('SELECT id FROM items WHERE processed > 1 ORDER BY id')
      .pluck()
      .all() as number[];
    const missed = db
      .prepare('SELECT id FROM items WHERE processed = 0 ORDER BY id')
      .pluck()
      .all() as number[];
    return toCounts(byTimes, dup, missed);
  } finally {
    db.close();
  }
}

export interface RowCounts {
  total: number;
  once: number;
  missed: number[];
  duplicated: number[];
}

export function toCounts(
  byTimes: { processed: number; n: number }[],
  duplicated: number[],
  missed: number[],
): RowCounts {
  const total = byTimes.reduce((s, r) => s + Number(r.n), 0);
  const once = Number(byTimes.find((r) => Number(r.processed) === 1)?.n ?? 0);
  return { total, once, missed, duplicated };
}
