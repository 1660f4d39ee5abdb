/** A user callback that did not settle in time; its late answer, if any, is ignored. */
export class TimeLimitError extends Error {
  override readonly name = 'TimeLimitError';

  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/**
 * `call()`'s answer, or a rejection with `TimeLimitError` once it ran `ms`
 * (`0`: no limit). A user callback that never settles would otherwise hold
 * whatever waits on it for ever, silently. `background`: nothing the process
 * must stay up for waits on it (a total, a throttle after the run), so the
 * time limit alone never keeps the process alive.
 */
export function withinMs<T>(
  ms: number,
  call: () => T | Promise<T>,
  background = false,
): Promise<T> {
  const answer = Promise.resolve().then(call);
  if (ms <= 0) return answer;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeLimitError(ms)), ms);
    if (background) timer.unref();
  });
  return Promise.race([answer, limit]).finally(() => clearTimeout(timer));
}
