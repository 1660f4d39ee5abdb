import { testPorts } from './ports';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisCli, until } from './redis-cli';

/**
 * A Redis Cluster of the test's own: three masters on their own ports
 * (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`).
 */
export class OwnRedisCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'pw-cluster-'));
  readonly ports: number[];

  /** `password`: every node requires it (`requirepass`, and `masterauth` between nodes). */
  constructor(readonly password?: string) {
    const base = testPorts(3);
    this.ports = [base, base + 1, base + 2];
  }

  /** `host:port` of every master, as ioredis' `new Cluster(nodes)` takes them. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  async start(): Promise<void> {
    for (const port of this.ports) {
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
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--logfile',
        join(this.dir, `redis-${port}.log`),
        ...(this.password
          ? ['--requirepass', this.password, '--masterauth', this.password]
          : []),
      ]);
    }
    await this.ready(() =>
      this.ports.every(
        (port) => redisCli(port, ...this.auth, 'ping') === 'PONG',
      ),
    );
    execFileSync(
      'redis-cli',
      [
        ...this.auth,
        '--cluster',
        'create',
        ...this.ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdio: 'ignore' },
    );
    await this.ready(() =>
      this.ports.every((port) =>
        redisCli(port, ...this.auth, 'cluster', 'info').includes(
          'cluster_state:ok',
        ),
      ),
    );
  }

  stop(): void {
    for (const port of this.ports) {
      try {
        execFileSync(
          'redis-cli',
          ['-p', String(port), ...this.auth, 'shutdown', 'nosave'],
          {
            stdio: 'ignore',
          },
        );
      } catch {
        // Already gone.
      }
    }
  }

  /** How many keys each master holds: a job's keys share one hash tag, so one master holds them all. */
  keysPerNode(): number[] {
    return this.ports.map((port) =>
      Number(redisCli(port, ...this.auth, 'dbsize')),
    );
  }

  /** redis-cli's arguments for the password, when there is one. */
  private get auth(): string[] {
    return this.password ? ['-a', this.password, '--no-auth-warning'] : [];
  }

  private ready(test: () => boolean): Promise<void> {
    return until(
      test,
      `the Redis Cluster on ports ${this.ports.join(', ')} did not come up`,
    );
  }
}
