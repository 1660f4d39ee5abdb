import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../../lib';

export const FIXTURE_MAIN = join(
  __dirname,
  '../../dist-test/test/fixture/main.js',
);

export interface FixtureRun {
  child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** When each chunk of output arrived (ms since the epoch), to time recoveries. */
  chunks: { at: number; text: string }[];
  /** Resolves when `pattern` appears in the output. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<FixtureResult>;
}

export interface FixtureResult {
  code: number | null;
  signal: string | null;
  output: string;
  summary?: RunSummary;
  /** Every SUMMARY line, for an app that runs more than once. */
  summaries: RunSummary[];
  failed?: { message: string; summary: RunSummary };
  /** run() refused (RunRefusedError) or the store unreachable (StoreUnavailableError). */
  refused?: { message: string; job: string };
  unavailable?: { message: string; job: string };
}

/** Fixture apps still running, with their workers. */
const running = new Set<ChildProcess>();

/** Ends a primary and its workers at once (SIGKILL). */
function killTree(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  let workers: number[] = [];
  try {
    workers = execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    // pgrep exits 1 when the primary has no children.
  }
  for (const each of [pid, ...workers])
    try {
      process.kill(each, 'SIGKILL');
    } catch {
      // gone already
    }
}

// A test that fails midway (say, with its app paused, waiting for a resume that never comes)
// must not keep that app, and with it jest, running: what a test file left is ended after it.
if (typeof afterAll === 'function')
  afterAll(() => {
    for (const child of running) killTree(child);
  });

/**
 * Starts the compiled fixture app (`npm run build:fixture`) as a real primary
 * that forks real workers. It runs in `FIXTURE_CWD`, or in a fresh directory
 * of its own (removed when it exits): on the default store (no Redis, no
 * `FIXTURE_STORAGE_URL`) that is where its `parallel-worker.db` lives, so
 * each start is a new store unless the test names a directory.
 */
export function startFixture(
  env: Record<string, string | number | undefined>,
): FixtureRun {
  if (!existsSync(FIXTURE_MAIN))
    throw new Error(
      `${FIXTURE_MAIN} is missing: run npm run build:fixture first (npm test does).`,
    );
  const clean = Object.fromEntries(
    Object.entries(env)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, String(v)]),
  );
  const own = clean.FIXTURE_CWD
    ? undefined
    : mkdtempSync(join(tmpdir(), 'pw-fixture-'));
  const child = spawn(process.execPath, [FIXTURE_MAIN], {
    cwd: clean.FIXTURE_CWD ?? own,
    env: { ...process.env, ...clean },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('close', () => running.delete(child));
  let out = '';
  const chunks: { at: number; text: string }[] = [];
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    chunks.push({ at: Date.now(), text: d.toString() });
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<FixtureResult>((resolve) =>
    child.on('close', (code, signal) => {
      if (own) rmSync(own, { recursive: true, force: true });
      const line = (tag: string) =>
        out
          .split('\n')
          .find((l) => l.startsWith(`${tag} `))
          ?.slice(tag.length + 1);
      const summary = line('SUMMARY');
      const [failed, refused, unavailable] = [
        'FAILED',
        'REFUSED',
        'UNAVAILABLE',
      ].map(line);
      resolve({
        code,
        signal,
        output: out,
        summary: summary && JSON.parse(summary),
        summaries: out
          .split('\n')
          .filter((l) => l.startsWith('SUMMARY '))
          .map((l) => JSON.parse(l.slice('SUMMARY '.length)) as RunSummary),
        failed: failed && JSON.parse(failed),
        refused: refused && JSON.parse(refused),
        unavailable: unavailable && JSON.parse(unavailable),
      });
    }),
  );
  return {
    child,
    chunks,
    output: () => out,
    exited,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (match) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out waiting for ${pattern}; output so far:\n${out.slice(-3000)}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

/** Runs the fixture to its end. */
export const runFixture = (env: Record<string, string | number | undefined>) =>
  startFixture(env).exited;
