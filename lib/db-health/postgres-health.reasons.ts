import { seconds } from './db-health.options';

/** The row `postgresHealthQuery` answers (the parts it was asked for). */
export interface PostgresHealthRow {
  seesAll: boolean;
  replicas?: {
    name: string;
    address: string | null;
    state: string | null;
    lagMs: number | null;
    behindBytes: number | null;
  }[];
  selfPending?: boolean | null;
  selfLagMs?: number | null;
  vacuums?: {
    table: string;
    relation: string;
    command: string;
    phase: string;
    scanned: number | null;
    total: number | null;
    pid: number;
    auto: boolean;
  }[];
  oldestTransaction?: {
    pid: number;
    ageMs: number;
    state: string | null;
    user: string | null;
    application: string | null;
  } | null;
  activeBackends?: number;
}

/** The limits the row is held against (those of PostgresHealthOptions). */
export interface PostgresHoldLimits {
  maxReplicationLagMs?: number;
  maxTransactionAgeMs?: number;
  maxActiveBackends?: number;
}

/** Why the job should hold now, one sentence per cause; empty when it may go on. */
export function postgresHoldReasons(
  row: PostgresHealthRow,
  options: PostgresHoldLimits,
): string[] {
  const reasons: string[] = [];
  const maxLag = options.maxReplicationLagMs;
  if (maxLag !== undefined) {
    for (const replica of row.replicas ?? []) {
      const who = `replica "${replica.name}" at ${replica.address ?? 'a local socket'}`;
      if (replica.lagMs !== null && replica.lagMs > maxLag)
        reasons.push(
          `${who} replay lag ${seconds(replica.lagMs)} > maxReplicationLagMs ${maxLag}`,
        );
      else if (replica.lagMs === null && replica.state === 'catchup')
        reasons.push(
          `${who} is catching up, ${megabytes(replica.behindBytes)} of WAL behind (no lag measured yet)`,
        );
    }
    if (row.selfPending && row.selfLagMs === null)
      // Nothing to date the wait by: an unknown, not a hold nor an ok.
      throw new Error(
        'postgresHealth: this server is a replica with received WAL waiting to be replayed and no transaction replayed since it started, so its lag is unknown',
      );
    if (row.selfLagMs != null && row.selfLagMs > maxLag)
      reasons.push(
        `this server is a replica and its replay lags ${seconds(row.selfLagMs)} > maxReplicationLagMs ${maxLag}`,
      );
  }
  for (const vacuum of row.vacuums ?? []) {
    const what =
      vacuum.command === 'VACUUM' && vacuum.auto
        ? 'autovacuum'
        : vacuum.command;
    const on =
      vacuum.relation === vacuum.table ? '' : ` (on ${vacuum.relation})`;
    const progress = vacuum.total
      ? `, ${Math.floor((100 * (vacuum.scanned ?? 0)) / vacuum.total)}% of ${vacuum.total} blocks scanned`
      : '';
    reasons.push(
      `${what} of ${vacuum.table}${on} running (pid ${vacuum.pid}, phase ${vacuum.phase}${progress})`,
    );
  }
  const oldest = row.oldestTransaction;
  const maxAge = options.maxTransactionAgeMs;
  if (oldest && maxAge !== undefined && oldest.ageMs > maxAge) {
    const app = oldest.application
      ? `, application "${oldest.application}"`
      : '';
    reasons.push(
      `transaction of pid ${oldest.pid} (user ${oldest.user ?? '?'}${app}, ${oldest.state ?? 'state unknown'}) open ${seconds(oldest.ageMs)} > maxTransactionAgeMs ${maxAge}`,
    );
  }
  const maxActive = options.maxActiveBackends;
  if (maxActive !== undefined && (row.activeBackends ?? 0) > maxActive)
    reasons.push(
      `${row.activeBackends} active backends > maxActiveBackends ${maxActive}`,
    );
  return reasons;
}

const megabytes = (bytes: number | null) =>
  bytes === null ? 'an unknown amount' : `${(bytes / 1048576).toFixed(1)} MB`;
