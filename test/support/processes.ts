import { execFileSync } from 'node:child_process';
import type { FixtureRun } from './fixture';

export const sleep = (ms: number) =>
  new Promise<void>((r) => setTimeout(r, ms));

/** The pids of a process's children: a fixture primary's cluster workers. */
export const childrenOf = (pid: number): number[] => {
  try {
    return execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};

/** SIGKILLs a fixture host: its primary and its workers at once, as a machine that dies. */
export const killHost = (host: FixtureRun): void => {
  for (const pid of [
    host.child.pid as number,
    ...childrenOf(host.child.pid as number),
  ])
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
};

/** SIGKILLs one of the host's workers at random; its pid, or undefined when it has none now. */
export const killWorker = (host: FixtureRun): number | undefined => {
  const workers = childrenOf(host.child.pid as number);
  const pid = workers[Math.floor(Math.random() * workers.length)];
  if (pid === undefined) return undefined;
  try {
    process.kill(pid, 'SIGKILL');
    return pid;
  } catch {
    return undefined;
  }
};

/** Resolves once `check` is true; throws after `timeoutMs`. */
export const waitUntil = async (
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
  what = 'a condition',
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};
