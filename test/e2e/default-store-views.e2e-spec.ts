import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../support/cli';
import { testPorts } from '../support/ports';

const ROOT = join(__dirname, '../..');
const SAMPLE = join(ROOT, 'dist-sample/sample/main.js');
const CRON_SAMPLE = join(ROOT, 'dist-sample/sample/cron/main.js');
const USERS = 3_000;

/** The samples' environment without any store or database named: the default store, SQLite files in the working directory. */
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const { REDIS_URL: _r, DATABASE_URL: _d, ...rest } = process.env;
  return {
    ...rest,
    SAMPLE_WORKERS: '2',
    SAMPLE_USERS: String(USERS),
    ...extra,
  };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The run-once sample and the HTTP sample (its dashboard at /jobs) started in
 * one directory with no `storage` option: the run made by one process is seen
 * and steered by the other's dashboard and by the CLI, through the default
 * store's `parallel-worker.db`.
 */
describe('the default store seen from other processes (e2e)', () => {
  let dir: string;
  let stopHttp: (() => Promise<void>) | undefined;

  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist/index.js')))
      throw new Error(
        'dist/ is missing: run npm run build first (npm test does).',
      );
    // npm run build:sample: the samples as their users run them, against dist/.
    execFileSync(
      process.execPath,
      [
        require.resolve('typescript/bin/tsc'),
        '-p',
        join(ROOT, 'sample/tsconfig.app.json'),
      ],
      { cwd: ROOT, stdio: 'inherit' },
    );
  }, 120_000);
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'pw-default-views-'))));
  afterEach(async () => {
    await stopHttp?.();
    stopHttp = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('the CLI and the dashboard of another process show the run and reset it', async () => {
    const port = testPorts(1);
    // The HTTP sample, its cron far away: it only serves the dashboard here.
    const http = spawn(process.execPath, [CRON_SAMPLE], {
      cwd: dir,
      env: env({ PORT: String(port), CRON: '0 0 0 1 1 *' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let httpOut = '';
    http.stdout.on('data', (d: Buffer) => (httpOut += d.toString()));
    http.stderr.on('data', (d: Buffer) => (httpOut += d.toString()));
    const closed = new Promise<void>((r) => http.once('close', () => r()));
    stopHttp = async () => {
      if (http.exitCode === null && http.signalCode === null)
        http.kill('SIGTERM');
      await closed;
    };
    for (let i = 0; !/Listening on http/.test(httpOut); i++) {
      if (http.exitCode !== null || i > 300)
        throw new Error(
          `the HTTP sample did not listen:\n${httpOut.slice(-3000)}`,
        );
      await sleep(100);
    }

    // The run-once sample, another process in the same directory: seeds sample.db and runs users.
    const once = await promisify(execFile)(process.execPath, [SAMPLE], {
      cwd: dir,
      env: env(),
    }).catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`the sample failed:\n${e.stdout}${e.stderr}`);
    });
    expect(`${once.stdout}${once.stderr}`).toContain(
      `${USERS} of ${USERS} rows processed exactly once`,
    );
    expect(existsSync(join(dir, 'parallel-worker.db'))).toBe(true);

    // The CLI in that directory, with no store named, reads ./parallel-worker.db.
    const history = await runCli(['history', 'users', '--json'], {}, dir);
    expect(history.code).toBe(0);
    const [last] = JSON.parse(history.out) as {
      runId: string;
      status: string;
      summary: { ids: number };
    }[];
    expect(last).toMatchObject({
      status: 'completed',
      summary: { ids: USERS },
    });
    const status = await runCli(['status', 'users', '--json'], {}, dir);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.out)).toMatchObject({
      job: 'users',
      state: 'completed',
      runId: last.runId,
    });

    // The dashboard of the HTTP sample shows the run the other process made.
    const page = await (await fetch(`http://127.0.0.1:${port}/jobs`)).text();
    expect(page).toContain(`title="${last.runId}"`);
    expect(page).toContain(USERS.toLocaleString('en-US'));

    // ...and steers it: reset from the page, then the CLI sees the cursor back at the start.
    const reset = await fetch(`http://127.0.0.1:${port}/jobs/users/reset`, {
      method: 'POST',
      headers: {
        'x-parallel-worker-dashboard': '1',
        origin: `http://127.0.0.1:${port}`,
      },
    });
    expect(reset.status).toBe(200);
    const after = await runCli(['status', 'users', '--json'], {}, dir);
    expect(JSON.parse(after.out)).toMatchObject({ job: 'users', cursor: null });
  }, 180_000);
});
