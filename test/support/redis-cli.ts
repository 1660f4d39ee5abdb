import { execFileSync } from 'node:child_process';

/** `redis-cli -p <port> <args>`, trimmed; '' when the server does not answer. */
export function redisCli(port: number, ...args: string[]): string {
  try {
    return execFileSync('redis-cli', ['-p', String(port), ...args])
      .toString()
      .trim();
  } catch {
    return '';
  }
}

/** Polls `test` every 50 ms for up to 10 s; throws `failure` after that. */
export async function until(
  test: () => boolean,
  failure: string,
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (test()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(failure);
}
