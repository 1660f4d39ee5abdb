import type {
  HealthIndicator,
  HealthSignal,
} from '../interfaces/health-indicator.interface';
import { redactSecrets } from '../redact-secrets';
import {
  checkOptions,
  configError,
  driver,
  errorText,
  VERIFY_TIMEOUT_MS,
  within,
} from './db-health.options';
import { postgresHealthQuery } from './postgres-health.query';
import {
  type PostgresHealthRow,
  postgresHoldReasons,
} from './postgres-health.reasons';

const NAME = 'postgresHealth';

/** Options of `postgresHealth()`: each check is on when its option is given. */
export interface PostgresHealthOptions {
  /**
   * The job's tables (`'users'`, `'billing.invoices'`, resolved on the
   * pool's search_path): hold while a VACUUM, autovacuum, VACUUM FULL or
   * CLUSTER runs on one of them, a partition of one, or their TOAST tables.
   */
  tables?: string[];
  /** Whether a vacuum of `tables` holds; default `true` when `tables` is given. */
  vacuum?: boolean;
  /**
   * Hold while a replica streaming from this server (physical or logical;
   * a base backup's sender is none) lags more. The lag is its `replay_lag`:
   * while its replay is paused or stuck it grows with each reply the replica
   * sends (on every WAL message while the primary writes, otherwise every
   * wal_receiver_status_interval, 10 s by default), and it counts as 0 once
   * the replica has replayed all WAL there is (the column keeps its last,
   * stale value then). When this server is a replica itself: the age of its
   * last replayed commit while received WAL waits to be replayed (unknown,
   * so a failed check, when it has replayed none since it started).
   */
  maxReplicationLagMs?: number;
  /** Hold while a transaction in this database has been open longer (it holds back vacuum). */
  maxTransactionAgeMs?: number;
  /** Hold while more sessions than this run a statement (`state = 'active'`), in all databases. */
  maxActiveBackends?: number;
}

/** The part of a node-postgres `Pool` (or `Client`) the indicator uses. */
export interface PgQueryable {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[] }>;
}

interface OwnPool extends PgQueryable {
  end(): Promise<void>;
  on(event: 'error', listener: (e: Error) => void): unknown;
}

/**
 * A health indicator for PostgreSQL: one catalog query per check answers
 * `hold` (with a reason a person can act on) while a replica lags, a vacuum
 * runs on the job's tables, a transaction stays open too long or too many
 * sessions are busy. `poolOrUrl` is your `pg` Pool (never closed here) or a
 * `postgres://` URL, for which it opens a pool of one connection that
 * `close()` ends. The role needs `pg_monitor` (or `pg_read_all_stats`) to see
 * other sessions; `verify()` says so.
 */
export function postgresHealth(
  poolOrUrl: PgQueryable | string,
  options: PostgresHealthOptions = {},
): HealthIndicator {
  checkOptions(NAME, options, {
    tables: 'tables',
    vacuum: 'boolean',
    maxReplicationLagMs: 'ms',
    maxTransactionAgeMs: 'ms',
    maxActiveBackends: 'count',
  });
  const tables = options.tables ?? [];
  if (options.vacuum && !tables.length)
    throw configError(
      NAME,
      'option "vacuum" needs option "tables": the tables whose vacuum holds the job.',
    );
  const parts = {
    replication: options.maxReplicationLagMs !== undefined,
    vacuum: tables.length > 0 && options.vacuum !== false,
    transactions: options.maxTransactionAgeMs !== undefined,
    backends: options.maxActiveBackends !== undefined,
  };
  if (!Object.values(parts).some(Boolean))
    throw configError(
      NAME,
      'no check is on: give maxReplicationLagMs, maxTransactionAgeMs, maxActiveBackends or tables.',
    );
  const { pool, owned, where } = connect(poolOrUrl);
  const sql = postgresHealthQuery(parts);
  const params = parts.vacuum ? [tables] : [];

  const indicator = async (): Promise<HealthSignal> => {
    const { rows } = await pool.query(sql, params);
    const row = rows[0] as unknown as PostgresHealthRow;
    if (!row.seesAll) throw new Error(`${NAME}: ${cannotSee('the role')}`);
    const reasons = postgresHoldReasons(row, options);
    return reasons.length
      ? { state: 'hold', reason: reasons.join('; ') }
      : { state: 'ok' };
  };

  const verify = async (): Promise<void> => {
    let row: { seesAll: boolean; role: string; missing: string[] };
    try {
      const answer = await within(
        pool.query(
          `SELECT current_user AS role, pg_has_role('pg_read_all_stats', 'USAGE') AS "seesAll",
             ARRAY(SELECT t FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL) AS missing`,
          [tables],
        ),
        VERIFY_TIMEOUT_MS,
        () => new Error(`no answer within ${VERIFY_TIMEOUT_MS / 1000} s`),
      );
      row = answer.rows[0] as typeof row;
    } catch (e) {
      throw configError(
        NAME,
        `cannot query PostgreSQL at ${where} (${errorText(e)}). Check that the server is up and that the host, port, database, user and password of the pool or URL given to postgresHealth() are right.`,
      );
    }
    if (row.missing.length)
      throw configError(
        NAME,
        `option "tables" names ${row.missing.map((t) => `"${t}"`).join(', ')}, which ${row.missing.length > 1 ? 'do' : 'does'} not exist in ${where} (looked up on the role's search_path; schema-qualify it, e.g. "billing.invoices").`,
      );
    if (!row.seesAll)
      throw configError(NAME, cannotSee(`the role "${row.role}"`));
  };

  const close = async (): Promise<void> => {
    if (owned) await owned.end();
  };

  return Object.assign(indicator, { indicatorName: NAME, verify, close });
}

const cannotSee = (role: string) =>
  `${role} cannot read other sessions' statistics: pg_stat_replication's lag columns, pg_stat_activity and pg_stat_progress_vacuum show it NULLs, which would look healthy. Run GRANT pg_monitor TO <role> (or pg_read_all_stats), or connect as a role that has it.`;

/** The pool to query: the caller's, or one of our own for a URL. */
function connect(poolOrUrl: PgQueryable | string): {
  pool: PgQueryable;
  owned?: OwnPool;
  where: string;
} {
  if (typeof poolOrUrl === 'string') {
    if (!/^postgres(ql)?:\/\//.test(poolOrUrl))
      throw configError(
        NAME,
        `expected a pg Pool or a postgres:// URL, got the string ${redactSecrets(JSON.stringify(poolOrUrl))}.`,
      );
    const where = redactSecrets(poolOrUrl);
    const { Pool } = driver<{ Pool: new (config: object) => OwnPool }>(
      NAME,
      'pg',
      where,
    );
    const owned = new Pool({
      connectionString: poolOrUrl,
      max: 1,
      connectionTimeoutMillis: VERIFY_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      // A check never waits long: the caller gives up on it sooner anyway.
      statement_timeout: 10_000,
      application_name: 'nestjs-parallel-worker health',
    });
    // An idle connection the server drops is not an unhandled error; the next check reconnects.
    owned.on('error', () => undefined);
    return { pool: owned, owned, where };
  }
  if (typeof poolOrUrl?.query !== 'function')
    throw configError(
      NAME,
      `expected a pg Pool or a postgres:// URL, got ${typeof poolOrUrl === 'object' ? 'an object without query()' : typeof poolOrUrl}.`,
    );
  return { pool: poolOrUrl, where: describePool(poolOrUrl) };
}

/** Where a pool connects, for messages (its password masked). */
function describePool(pool: PgQueryable): string {
  const o =
    (pool as { options?: Record<string, string | number | undefined> })
      .options ?? {};
  if (typeof o.connectionString === 'string')
    return redactSecrets(o.connectionString);
  const host = o.host ?? process.env.PGHOST ?? 'localhost';
  const port = o.port ?? process.env.PGPORT ?? 5432;
  const database = o.database ?? process.env.PGDATABASE ?? '';
  return `${host}:${port}/${database} (the pool's)`;
}
