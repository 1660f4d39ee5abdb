import type { DeadLettersOptions } from './job-store.interface';

/** The page of dead letters `deadLetters` asks for; undefined for all of them. */
export function pageOf(
  options: DeadLettersOptions | undefined,
): { offset: number; limit: number } | undefined {
  if (options?.offset === undefined && options?.limit === undefined)
    return undefined;
  return {
    offset: options.offset ?? 0,
    limit: options.limit ?? Number.MAX_SAFE_INTEGER,
  };
}
