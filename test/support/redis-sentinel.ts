import { testPorts } from './ports';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisCli, until } from './redis-cli';

/** redis-cli's arguments for a password, when there is one. */
const auth = (password?: string): string[] =>
  password ? ['-a', password, '--no-auth-warning'] : [];

/**
 * Redis behind Sentinel, of the test's own: a master, a replica of it, and a
 * sentinel (`redis-server --sentinel`) that monitors them as `name`.
 */
export class OwnRedisSentinel {
  readonly dir = mkdtempSync(join(tmpdir(), 'pw-sentinel-'));
  readonly name = 'pw-master';
  readonly master: number;
  readonly replica: number;
  readonly sentinel: number;

  /**
   * `password`: the master and replica require it; `sentinelPassword`: the
   * sentinel requires that one (it knows the master's as `auth-pass`).
   */
  constructor(
    readonly password?: string,
    readonly sentinelPassword?: string,
  ) {
    const base = testPorts(3);
    [this.master, this.replica, this.sentinel] = [base, base + 1, base + 2];
  }

  async start(): Promise<void> {
    const server = (port: number, ...extra: string[]) =>
      execFileSync('redis-server', [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--daemonize',
        'yes',
        '--save',
        '',
        '--appendonly',
        'no',
        '--logfile',
        join(this.dir, `redis-${port}.log`),
        '--dbfilename',
        `dump-${port}.rdb`,
        ...(this.password
          ? ['--requirepass', this.password, '--masterauth', this.password]
          : []),
        ...extra,
      ]);
    server(this.master);
    server(this.replica, '--replicaof', '127.0.0.1', String(this.master));
    const conf = join(this.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${this.sentinel}`,
        'bind 127.0.0.1',
        'daemonize yes',
        `logfile ${join(this.dir, 'sentinel.log')}`,
        `dir ${this.dir}`,
        `sentinel monitor ${this.name} 127.0.0.1 ${this.master} 1`,
        `sentinel down-after-milliseconds ${this.name} 5000`,
        ...(this.password
          ? [`sentinel auth-pass ${this.name} ${this.password}`]
          : []),
        ...(this.sentinelPassword
          ? [`requirepass ${this.sentinelPassword}`]
          : []),
      ].join('\n'),
    );
    execFileSync('redis-server', [conf, '--sentinel']);
    await this.ready(() =>
      redisCli(
        this.sentinel,
        ...auth(this.sentinelPassword),
        'sentinel',
        'get-master-addr-by-name',
        this.name,
      ).includes(String(this.master)),
    );
    await this.ready(() =>
      redisCli(
        this.replica,
        ...auth(this.password),
        'info',
        'replication',
      ).includes('master_link_status:up'),
    );
  }

  stop(): void {
    for (const port of [this.sentinel, this.replica, this.master]) {
      const password =
        port === this.sentinel ? this.sentinelPassword : this.password;
      try {
        execFileSync(
          'redis-cli',
          ['-p', String(port), ...auth(password), 'shutdown', 'nosave'],
          {
            stdio: 'ignore',
          },
        );
      } catch {
        // Already gone.
      }
    }
  }

  /** The port of the master the sentinel names now. */
  masterPort(): number {
    return Number(
      redisCli(
        this.sentinel,
        ...auth(this.sentinelPassword),
        'sentinel',
        'get-master-addr-by-name',
        this.name,
      ).split('\n')[1],
    );
  }

  /** A failover now: the sentinel promotes the replica and makes the old master its replica. */
  failover(): void {
    redisCli(
      this.sentinel,
      ...auth(this.sentinelPassword),
      'sentinel',
      'failover',
      this.name,
    );
  }

  /** Keys on the master and on the replica. */
  keys(): [number, number] {
    return [
      Number(redisCli(this.master, ...auth(this.password), 'dbsize')),
      Number(redisCli(this.replica, ...auth(this.password), 'dbsize')),
    ];
  }

  private ready(test: () => boolean): Promise<void> {
    return until(
      test,
      `Redis with Sentinel on ports ${this.master}, ${this.replica}, ${this.sentinel} did not come up`,
    );
  }
}
