import type { SqlDialect, SqlTransaction } from './sql-dialect.interface';

/**
 * The SQL store's tables (`pw_`: the module's, so they can sit beside an
 * app's own in one database). A job is a row of `pw_jobs`, keyed by
 * `storageKey` (space) and name; every other table hangs off its `id`. Ids,
 * ranges and cursors are JSON text, compared and kept as sent, so no id loses
 * digits. Times are store time in ms since the epoch.
 *
 * Each entry of MIGRATIONS brings the schema from its index to the next
 * version; `pw_schema` holds the version the file is at. Never edit an entry
 * once released: add one.
 */
const MIGRATIONS: ((types: SqlDialect['types']) => string[])[] = [
  ({ integer: int, serialKey, keyed }) => [
    `CREATE TABLE pw_jobs (
      id ${serialKey},
      space TEXT NOT NULL,
      name TEXT NOT NULL,
      declared_by TEXT,
      run_id TEXT,
      state TEXT NOT NULL DEFAULT 'idle',
      control TEXT NOT NULL DEFAULT 'run',
      error TEXT,
      total ${int},
      params TEXT,
      started_by TEXT,
      started_on TEXT,
      cursor TEXT NOT NULL DEFAULT 'null',
      exhausted ${int} NOT NULL DEFAULT 0,
      partitions ${int} NOT NULL DEFAULT 0,
      token ${int} NOT NULL DEFAULT 0,
      ids ${int} NOT NULL DEFAULT 0,
      completed ${int} NOT NULL DEFAULT 0,
      retried ${int} NOT NULL DEFAULT 0,
      dead ${int} NOT NULL DEFAULT 0,
      workers_started ${int} NOT NULL DEFAULT 0,
      workers_restarted ${int} NOT NULL DEFAULT 0,
      started_at ${int},
      ended_at ${int},
      permit_second ${int},
      permit_used ${int} NOT NULL DEFAULT 0,
      previous_run_id TEXT,
      previous_state TEXT,
      previous_error TEXT,
      UNIQUE (space, name)
    )`,
    `CREATE TABLE pw_leases (
      job_id ${int} NOT NULL REFERENCES pw_jobs (id),
      token ${int} NOT NULL,
      run_id TEXT NOT NULL,
      owner TEXT NOT NULL,
      attempt ${int} NOT NULL,
      deadline ${int} NOT NULL,
      ids ${int} NOT NULL,
      range TEXT NOT NULL,
      PRIMARY KEY (job_id, token)
    )${keyed}`,
    'CREATE INDEX pw_leases_deadline ON pw_leases (job_id, deadline)',
    `CREATE TABLE pw_pending (
      id ${serialKey},
      job_id ${int} NOT NULL REFERENCES pw_jobs (id),
      run_id TEXT NOT NULL,
      attempt ${int} NOT NULL,
      due ${int} NOT NULL,
      reason TEXT NOT NULL,
      ids ${int} NOT NULL,
      range TEXT NOT NULL
    )`,
    'CREATE INDEX pw_pending_due ON pw_pending (job_id, due, id)',
    `CREATE TABLE pw_dead_letters (
      id ${serialKey},
      job_id ${int} NOT NULL REFERENCES pw_jobs (id),
      run_id TEXT NOT NULL,
      range TEXT NOT NULL,
      attempts ${int} NOT NULL,
      error TEXT NOT NULL,
      at ${int} NOT NULL
    )`,
    'CREATE INDEX pw_dead_letters_job ON pw_dead_letters (job_id, id)',
    `CREATE TABLE pw_hosts (
      job_id ${int} NOT NULL REFERENCES pw_jobs (id),
      owner TEXT NOT NULL,
      until ${int} NOT NULL,
      PRIMARY KEY (job_id, owner)
    )${keyed}`,
    `CREATE TABLE pw_replies (
      job_id ${int} NOT NULL REFERENCES pw_jobs (id),
      owner TEXT NOT NULL,
      slot TEXT NOT NULL,
      request TEXT NOT NULL,
      answer TEXT NOT NULL,
      PRIMARY KEY (job_id, owner, slot)
    )${keyed}`,
    `CREATE TABLE pw_partitions (
      job_id ${int} NOT NULL REFERENCES pw_jobs (id),
      idx ${int} NOT NULL,
      after TEXT NOT NULL,
      up_to TEXT NOT NULL,
      cursor TEXT NOT NULL,
      exhausted ${int} NOT NULL DEFAULT 0,
      ids ${int} NOT NULL DEFAULT 0,
      loader TEXT,
      loader_until ${int},
      PRIMARY KEY (job_id, idx)
    )${keyed}`,
    `CREATE TABLE pw_history (
      job_id ${int} NOT NULL REFERENCES pw_jobs (id),
      run_id TEXT NOT NULL,
      seq ${int} NOT NULL,
      status TEXT NOT NULL,
      record TEXT NOT NULL,
      PRIMARY KEY (job_id, run_id)
    )${keyed}`,
    'CREATE INDEX pw_history_seq ON pw_history (job_id, seq)',
  ],
  // State lost in part: the parts found lost, and how many rows of each part the last call left (NULL: no record yet).
  ({ integer: int }) => [
    'ALTER TABLE pw_jobs ADD COLUMN lost TEXT',
    `ALTER TABLE pw_jobs ADD COLUMN n_leases ${int}`,
    `ALTER TABLE pw_jobs ADD COLUMN n_pending ${int}`,
    `ALTER TABLE pw_jobs ADD COLUMN n_dead ${int}`,
    `ALTER TABLE pw_jobs ADD COLUMN n_partitions ${int}`,
  ],
  // Holds (the health option): the run's current or last hold (NULL: none this run), the time held in the holds
  // before it, and when the next health turn may be taken (NULL: now). One column a statement, plain types: every
  // database adds them as they are.
  ({ integer: int }) => [
    'ALTER TABLE pw_jobs ADD COLUMN hold_reason TEXT',
    'ALTER TABLE pw_jobs ADD COLUMN hold_indicator TEXT',
    `ALTER TABLE pw_jobs ADD COLUMN hold_since ${int}`,
    `ALTER TABLE pw_jobs ADD COLUMN hold_until ${int}`,
    `ALTER TABLE pw_jobs ADD COLUMN held_ms ${int} NOT NULL DEFAULT 0`,
    `ALTER TABLE pw_jobs ADD COLUMN health_at ${int}`,
  ],
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the tables up to SCHEMA_VERSION inside `tx` (one transaction: a
 * failed upgrade leaves the schema as it was). Returns the version found, so
 * the caller refuses one newer than it knows before anything is written.
 */
export async function migrate(
  tx: SqlTransaction,
  types: SqlDialect['types'],
): Promise<{ found: number }> {
  await tx.run(
    `CREATE TABLE IF NOT EXISTS pw_schema (one ${types.integer} PRIMARY KEY CHECK (one = 1), version ${types.integer} NOT NULL)`,
  );
  const row = await tx.get('SELECT version FROM pw_schema WHERE one = 1');
  const found = row ? Number(row.version) : 0;
  if (found >= SCHEMA_VERSION) return { found };
  for (let version = found; version < SCHEMA_VERSION; version++)
    for (const statement of MIGRATIONS[version](types)) await tx.run(statement);
  await tx.run(
    'INSERT INTO pw_schema (one, version) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET version = excluded.version',
    [SCHEMA_VERSION],
  );
  return { found };
}
