/**
 * The one statement `postgresHealth` runs per check, with only the parts its
 * options ask for. `$1` is the `tables` option (text[]) when vacuums are checked.
 */
export function postgresHealthQuery(parts: {
  replication: boolean;
  vacuum: boolean;
  transactions: boolean;
  backends: boolean;
}): string {
  const columns = [
    // Without it every other session's row reads as NULLs, which would look healthy.
    `pg_has_role('pg_read_all_stats', 'USAGE') AS "seesAll"`,
  ];
  if (parts.replication) columns.push(REPLICAS, SELF_LAG);
  if (parts.vacuum) columns.push(VACUUMS);
  if (parts.transactions) columns.push(OLDEST_TRANSACTION);
  if (parts.backends) columns.push(ACTIVE_BACKENDS);
  return `SELECT ${columns.join(',\n  ')}`;
}

/**
 * Each replica streaming from this server (a base backup's sender left out).
 * `replay_lag` keeps growing while a replica's replay is stuck and it still
 * reports (on each WAL it receives, and every wal_receiver_status_interval
 * otherwise), but it also keeps its last, stale value once the replica has
 * caught up on an idle primary: a replica that has replayed everything there
 * is has no lag, whatever the column still says.
 */
const REPLICAS = `(SELECT coalesce(json_agg(json_build_object(
      'name', r.application_name, 'address', host(r.client_addr), 'state', r.state,
      'lagMs', CASE WHEN r.replay_lsn >= head.lsn THEN 0
                    ELSE extract(epoch FROM r.replay_lag) * 1000 END,
      'behindBytes', pg_wal_lsn_diff(head.lsn, r.replay_lsn)) ORDER BY r.pid), '[]')
    FROM pg_stat_replication r,
      (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                   ELSE pg_current_wal_lsn() END AS lsn) head
    WHERE r.state IS DISTINCT FROM 'backup') AS replicas`;

/**
 * When this server is a replica itself: whether WAL it has received waits to
 * be replayed, and then how old its newest replayed commit is (NULL when it
 * has replayed none since it started). 0 when nothing waits, as an idle
 * primary sends no commits to replay.
 */
const SELF_LAG = `pg_is_in_recovery() AND pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn() AS "selfPending",
  CASE WHEN NOT pg_is_in_recovery() THEN NULL
       WHEN pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
         THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 * 1000
       ELSE 0 END AS "selfLagMs"`;

/**
 * A VACUUM, autovacuum or VACUUM FULL / CLUSTER of one of `tables`, of a
 * partition of it, or of their TOAST tables, in this database (relation ids
 * repeat across databases).
 */
const VACUUMS = `(SELECT coalesce(json_agg(json_build_object(
      'table', t.name, 'relation', v.relid::regclass::text, 'command', v.command,
      'phase', v.phase, 'scanned', v.scanned, 'total', v.total, 'pid', v.pid,
      'auto', a.backend_type = 'autovacuum worker') ORDER BY v.pid), '[]')
    FROM (SELECT pid, datid, relid, 'VACUUM' AS command, phase, heap_blks_scanned AS scanned, heap_blks_total AS total
            FROM pg_stat_progress_vacuum
          UNION ALL
          SELECT pid, datid, relid, command, phase, heap_blks_scanned, heap_blks_total
            FROM pg_stat_progress_cluster) v
    JOIN (SELECT DISTINCT ON (rel.oid) t.name, rel.oid
            FROM unnest($1::text[]) AS t(name),
              LATERAL (SELECT to_regclass(t.name) AS relid
                       UNION SELECT relid FROM pg_partition_tree(to_regclass(t.name))) tree,
              LATERAL (SELECT tree.relid::oid AS oid
                       UNION ALL
                       SELECT reltoastrelid FROM pg_class WHERE oid = tree.relid AND reltoastrelid <> 0) rel
            WHERE tree.relid IS NOT NULL) t
      ON t.oid = v.relid
    LEFT JOIN pg_stat_activity a ON a.pid = v.pid
    WHERE v.datid = (SELECT oid FROM pg_database WHERE datname = current_database())) AS vacuums`;

/**
 * The oldest transaction open in this database (from PostgreSQL 14 one in
 * another database does not hold back this one's vacuum), this session's
 * own left out. Sessions idle outside a transaction have no xact_start.
 */
const OLDEST_TRANSACTION = `(SELECT json_build_object(
      'pid', pid, 'ageMs', extract(epoch FROM now() - xact_start) * 1000,
      'state', state, 'user', usename, 'application', application_name)
    FROM pg_stat_activity
    WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()
      AND backend_type = 'client backend' AND datname = current_database()
    ORDER BY xact_start LIMIT 1) AS "oldestTransaction"`;

/** Sessions running a statement now, in every database (the server's load), this one left out. */
const ACTIVE_BACKENDS = `(SELECT count(*)::int FROM pg_stat_activity
    WHERE state = 'active' AND pid <> pg_backend_pid()
      AND backend_type IN ('client backend', 'parallel worker')) AS "activeBackends"`;
