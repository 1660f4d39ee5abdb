import { testPorts } from './ports';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';

/** The shared Redis the multi-host tests use, unless PW_TEST_REDIS_URL says otherwise. */
export const REDIS_URL =
  process.env.PW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A redis-server of the test's own, on its own port, with appendonly on, so
 * the test can restart it mid-run and keep its data.
 */
export class OwnRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'pw-redis-'));
  readonly port = testPorts(1);
  readonly url = `redis://127.0.0.1:${this.port}`;

  /** `password`: the server requires it (`requirepass`); `url` stays without it. */
  constructor(readonly password?: string) {}

  /** redis-cli's arguments for the password, when there is one. */
  private get auth(): string[] {
    return this.password ? ['-a', this.password, '--no-auth-warning'] : [];
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--save',
        '',
        '--daemonize',
        'yes',
        '--logfile',
        join(this.dir, 'redis.log'),
        ...(this.password ? ['--requirepass', this.password] : []),
      ],
      { stdio: 'ignore' },
    );
    await new Promise((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 100; i++) {
      if (await this.ping()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** Graceful shutdown: the AOF is flushed, as in a restart of a real deployment. */
  stop(): void {
    execFileSync(
      'redis-cli',
      ['-p', String(this.port), ...this.auth, 'shutdown'],
      {
        stdio: 'ignore',
      },
    );
  }

  /** Freezes the server (SIGSTOP): connections stay open and every command hangs, as in a network partition that drops packets. */
  freeze(): void {
    const info = execFileSync('redis-cli', [
      '-p',
      String(this.port),
      ...this.auth,
      'info',
      'server',
    ]).toString();
    this.frozen = Number(/process_id:(\d+)/.exec(info)?.[1]);
    process.kill(this.frozen, 'SIGSTOP');
  }

  thaw(): void {
    if (this.frozen) process.kill(this.frozen, 'SIGCONT');
    this.frozen = undefined;
  }

  private frozen?: number;

  async ping(): Promise<boolean> {
    const r = new Redis(this.url, {
      password: this.password,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  }
}
