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
  seconds,
  VERIFY_TIMEOUT_MS,
  within,
} from './db-health.options';

const NAME = 'mysqlHealth';

/** Options of `mysqlHealth()`: each check is on when its option is given. */
export interface MysqlHealthOptions {
  /**
   * Hold while this server, when it is a replica, lags more
   * (`Seconds_Behind_Master` / `Seconds_Behind_Source`, whole seconds). A
   * replica whose replication threads are stopped has no lag to read: the
   * check fails, so it counts as `unknown`.
   */
  maxReplicationLagMs?: number;
  /** Hold while more threads than this run a statement (`Threads_running`, this check's own left out), like gh-ost's `--max-load`. */
  maxThreadsRunning?: number;
}

type Rows = Record<string, unknown>[];

/** The part of a mysql2 pool (promise API) the indicator uses; a callback pool is used through its `promise()`. */
export interface MysqlQueryable {
  query(sql: string): Promise<[unknown, unknown]>;
}

/**
 * A health indicator for MySQL and MariaDB: answers `hold` while
 * `Threads_running` is above `maxThreadsRunning`, or while this server is a
 * replica lagging more than `maxReplicationLagMs`. `poolOrUrl` is your mysql2
 * pool, promise or callback API (never closed here), or a `mysql://` URL, for
 * which it opens a pool of one connection that `close()` ends.
 *
 * The lag of the replicas of a MySQL primary cannot be read on the primary
 * (it has no `pg_stat_replication`): point another `mysqlHealth` at each
 * replica, or use a heartbeat table as gh-ost and pt-heartbeat do.
 */
export function mysqlHealth(
  poolOrUrl: MysqlQueryable | object | string,
  options: MysqlHealthOptions = {},
): HealthIndicator {
  checkOptions(NAME, options, {
    maxReplicationLagMs: 'ms',
    maxThreadsRunning: 'count',
  });
  const { maxReplicationLagMs: maxLag, maxThreadsRunning: maxThreads } =
    options;
  if (maxLag === undefined && maxThreads === undefined)
    throw configError(
      NAME,
      'no check is on: give maxReplicationLagMs or maxThreadsRunning.',
    );
  const { pool, owned, where } = connect(poolOrUrl);
  const rows = async (sql: string) => (await pool.query(sql))[0] as Rows;

  const indicator = async (): Promise<HealthSignal> => {
    const reasons: string[] = [];
    if (maxThreads !== undefined) {
      const [status] = await rows(`SHOW GLOBAL STATUS LIKE 'Threads_running'`);
      const running = Number(status?.Value) - 1;
      if (running > maxThreads)
        reasons.push(
          `Threads_running ${running} > maxThreadsRunning ${maxThreads}`,
        );
    }
    if (maxLag !== undefined) {
      const lagMs = replicaLagMs(await replicaStatus(rows));
      if (lagMs !== undefined && lagMs > maxLag)
        reasons.push(
          `this server is a replica and lags ${seconds(lagMs)} (Seconds_Behind_Master) > maxReplicationLagMs ${maxLag}`,
        );
    }
    return reasons.length
      ? { state: 'hold', reason: reasons.join('; ') }
      : { state: 'ok' };
  };

  const verify = async (): Promise<void> => {
    try {
      await within(
        rows('SELECT 1'),
        VERIFY_TIMEOUT_MS,
        () => new Error(`no answer within ${VERIFY_TIMEOUT_MS / 1000} s`),
      );
    } catch (e) {
      throw configError(
        NAME,
        `cannot query MySQL at ${where} (${errorText(e)}). Check that the server is up and that the host, port, user and password of the pool or URL given to mysqlHealth() are right.`,
      );
    }
    if (maxLag === undefined) return;
    try {
      await replicaStatus(rows);
    } catch (e) {
      throw configError(
        NAME,
        `option "maxReplicationLagMs" reads SHOW REPLICA STATUS, which failed (${errorText(e)}): GRANT REPLICATION CLIENT (MariaDB: REPLICA MONITOR) ON *.* TO the pool's user.`,
      );
    }
  };

  const close = async (): Promise<void> => {
    if (owned) await owned.end();
  };

  return Object.assign(indicator, { indicatorName: NAME, verify, close });
}

/** SHOW REPLICA STATUS (MySQL 8.0.22+, MariaDB 10.5+), or SHOW SLAVE STATUS where that is not known. */
async function replicaStatus(rows: (sql: string) => Promise<Rows>) {
  try {
    return (await rows('SHOW REPLICA STATUS'))[0];
  } catch (e) {
    if ((e as { errno?: number }).errno !== 1064) throw e;
    return (await rows('SHOW SLAVE STATUS'))[0];
  }
}

/** The lag a status row says, in ms; undefined when the server is no replica. */
function replicaLagMs(status: Record<string, unknown> | undefined) {
  if (!status) return undefined;
  const lag = status.Seconds_Behind_Source ?? status.Seconds_Behind_Master;
  if (lag === null || lag === undefined) {
    const io = status.Replica_IO_Running ?? status.Slave_IO_Running;
    const sql = status.Replica_SQL_Running ?? status.Slave_SQL_Running;
    throw new Error(
      `${NAME}: this server is a replica whose replication is not running (IO thread: ${String(io)}, SQL thread: ${String(sql)}), so its lag is unknown. If it is no replica any more, RESET REPLICA ALL.`,
    );
  }
  return Number(lag) * 1000;
}

/** The pool to query: the caller's, or one of our own for a URL. */
function connect(poolOrUrl: MysqlQueryable | object | string): {
  pool: MysqlQueryable;
  owned?: { end(): Promise<void> };
  where: string;
} {
  if (typeof poolOrUrl === 'string') {
    if (!/^(mysql|mariadb):\/\//.test(poolOrUrl))
      throw configError(
        NAME,
        `expected a mysql2 pool or a mysql:// URL, got the string ${redactSecrets(JSON.stringify(poolOrUrl))}.`,
      );
    const where = redactSecrets(poolOrUrl);
    const { createPool } = driver<{
      createPool(o: object): MysqlQueryable & { end(): Promise<void> };
    }>(NAME, 'mysql2/promise', where);
    const owned = createPool({
      uri: poolOrUrl.replace(/^mariadb:/, 'mysql:'),
      connectionLimit: 1,
      connectTimeout: VERIFY_TIMEOUT_MS,
      idleTimeout: 30_000,
    });
    return { pool: owned, owned, where };
  }
  const given = poolOrUrl as {
    query?: unknown;
    promise?: () => MysqlQueryable;
  };
  // A callback pool (mysql2's createPool) has promise(); a promise pool (mysql2/promise) has none.
  const pool =
    typeof given?.promise === 'function'
      ? given.promise()
      : (given as MysqlQueryable);
  if (typeof pool?.query !== 'function')
    throw configError(
      NAME,
      `expected a mysql2 pool or a mysql:// URL, got ${typeof poolOrUrl === 'object' ? 'an object without query()' : typeof poolOrUrl}.`,
    );
  type Configured = {
    config?: { connectionConfig?: { host?: string; port?: number } };
  };
  const inner = given as Configured & { pool?: Configured };
  const config = (inner.config ?? inner.pool?.config)?.connectionConfig ?? {};
  const where = `${config.host ?? 'localhost'}:${config.port ?? 3306} (the pool's)`;
  return { pool, where };
}
