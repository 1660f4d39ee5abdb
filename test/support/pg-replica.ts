import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { testPorts } from './ports';

const run = promisify(execFile);
const BIN = process.env.PW_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A PostgreSQL primary with one streaming standby, both this test's own. */
export interface PgReplica {
  primaryUrl: string;
  standbyUrl: string;
  primaryPort: number;
  standbyPort: number;
  /** Stops both servers at once and removes their files. */
  stop(): Promise<void>;
}

/** Runs a PostgreSQL program as the `postgres` OS user (the servers refuse to run as root). */
async function asPostgres(program: string, args: string[]): Promise<void> {
  const [file, argv] =
    process.getuid?.() === 0
      ? ['runuser', ['-u', 'postgres', '--', join(BIN, program), ...args]]
      : [join(BIN, program), args];
  await run(file, argv, { timeout: 30_000 });
}

/**
 * A primary (initdb, wal_level replica, fsync off, autovacuum off so that
 * only the test's own vacuums run) and a standby made with
 * `pg_basebackup -R`, on spare ports, with trust auth; resolves once
 * pg_stat_replication shows the standby streaming (about 2 s). On any
 * failure both are stopped and removed.
 */
export async function startPgReplica(): Promise<PgReplica> {
  const dir = mkdtempSync('/tmp/pw-pg-replica-');
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout), Number(gid));
  }
  const port = testPorts(2);
  const primary = join(dir, 'primary');
  const standby = join(dir, 'standby');
  const started: string[] = [];
  const stop = async () => {
    await Promise.all(
      started.map((data) =>
        asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(
          () => undefined,
        ),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  const settings = (p: number) =>
    `-p ${p} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  try {
    await asPostgres('initdb', [
      '-D',
      primary,
      '-U',
      'postgres',
      '--auth=trust',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    await asPostgres('pg_ctl', [
      '-D',
      primary,
      '-w',
      '-l',
      `${primary}.log`,
      '-o',
      `${settings(port)} -c wal_level=replica -c max_wal_senders=4 -c autovacuum=off`,
      'start',
    ]);
    started.push(primary);
    await asPostgres('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
      '-D',
      standby,
      '-R',
      '-X',
      'stream',
      '--checkpoint=fast',
    ]);
    await asPostgres('pg_ctl', [
      '-D',
      standby,
      '-w',
      '-l',
      `${standby}.log`,
      '-o',
      `${settings(port + 1)} -c hot_standby=on`,
      'start',
    ]);
    started.push(standby);
    const primaryUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await untilStreaming(primaryUrl);
    return {
      primaryUrl,
      standbyUrl: `postgres://postgres@127.0.0.1:${port + 1}/postgres`,
      primaryPort: port,
      standbyPort: port + 1,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function untilStreaming(url: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    for (const end = Date.now() + 15_000; Date.now() < end;) {
      const { rows } = await client.query(
        `SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'`,
      );
      if (rows.length) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the standby did not start streaming within 15 s');
  } finally {
    await client.end();
  }
}
