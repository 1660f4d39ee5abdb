import { ParallelWorkerConfigError } from '../errors';
import { show } from '../parallel-worker.messages';
import { redactSecrets } from '../redact-secrets';

/** How long `verify()` waits for the database to answer. */
export const VERIFY_TIMEOUT_MS = 5_000;

/** A `ParallelWorkerConfigError` from an indicator: `<name>: <text>`, any password in it masked. */
export const configError = (indicator: string, text: string) =>
  new ParallelWorkerConfigError(redactSecrets(`${indicator}: ${text}`));

/** Checks an indicator's options at the call that builds it: unknown keys, bad numbers and types. */
export function checkOptions(
  indicator: string,
  options: unknown,
  kinds: Record<string, 'ms' | 'count' | 'boolean' | 'tables'>,
): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw configError(
      indicator,
      `options must be an object, got ${show(options)}.`,
    );
  for (const [key, value] of Object.entries(options)) {
    const kind = kinds[key];
    if (!kind)
      throw configError(
        indicator,
        `unknown option "${key}"; the options are ${Object.keys(kinds).join(', ')}.`,
      );
    if (value === undefined) continue;
    const bad = problem(kind, value);
    if (bad)
      throw configError(
        indicator,
        `option "${key}" must be ${bad}, got ${show(value)}.`,
      );
  }
}

function problem(kind: string, value: unknown): string | undefined {
  switch (kind) {
    case 'ms':
      return typeof value === 'number' && Number.isFinite(value) && value > 0
        ? undefined
        : 'a number of milliseconds above 0';
    case 'count':
      return Number.isSafeInteger(value) && (value as number) >= 0
        ? undefined
        : 'a whole number, 0 or more';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'true or false';
    default:
      return Array.isArray(value) &&
        value.length > 0 &&
        value.every((t) => typeof t === 'string' && t.trim() !== '')
        ? undefined
        : 'a non-empty array of table names (e.g. ["users", "billing.invoices"])';
  }
}

/** `promise`, or a rejection with `onTimeout()` once `ms` have passed. */
export function within<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Loads a driver the app has (a peer it installs itself). */
export function driver<T>(indicator: string, name: string, url: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch {
    throw configError(
      indicator,
      `a URL (${url}) needs the ${name} package to connect: npm install ${name.split('/')[0]}, or pass your own pool.`,
    );
  }
}

/** `7.2 s` for 7150 ms: rounded up, so that `1.1 s > 1000` reads true for 1003 ms. */
export const seconds = (ms: number): string =>
  `${(Math.ceil(ms / 100) / 10).toFixed(1)} s`;

/** A driver's error text, for a message. */
export const errorText = (e: unknown): string =>
  e instanceof Error
    ? e.message ||
      (e as NodeJS.ErrnoException).code ||
      (e instanceof AggregateError
        ? e.errors.map(errorText).join('; ')
        : e.name)
    : String(e);
