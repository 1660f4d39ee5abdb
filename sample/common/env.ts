/** A whole number from the environment, or `fallback` when unset; refuses anything else. */
export function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a whole number >= 0, got "${raw}"`);
  }
  return value;
}

/** A switch from the environment (`1`/`true`/`on`/`yes` or `0`/`false`/`off`/`no`), or `fallback` when unset. */
export function flagFromEnv(name: string, fallback: boolean): boolean {
  const raw = process.env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'on', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'off', 'no'].includes(raw)) return false;
  throw new Error(`${name} must be 1 or 0 (on or off), got "${raw}"`);
}

/** A comma-separated list of whole numbers from the environment (`''` or unset: none). */
export function intsFromEnv(name: string): number[] {
  const raw = process.env[name] ?? '';
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const value = Number(part);
      if (!Number.isInteger(value) || value < 0)
        throw new Error(
          `${name} must list whole numbers >= 0 (1,2,3), got "${raw}"`,
        );
      return value;
    });
}
