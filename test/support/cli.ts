import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const CLI = join(__dirname, '../../dist/cli/main.js');

/** The built CLI as a user runs it, from a shell with `env` added, in `cwd` (output into a pipe). */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, cwd },
    );
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

/** `status --watch` into a pipe for `ms`, then Ctrl+C (SIGINT): what it wrote and how it exited. */
export function watchCli(
  args: string[],
  ms: number,
): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  setTimeout(() => child.kill('SIGINT'), ms);
  return new Promise((resolve) =>
    child.on('exit', (code) => resolve({ code, out })),
  );
}
