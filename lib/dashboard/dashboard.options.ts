import type { CanActivate, ModuleMetadata, Type } from '@nestjs/common';
import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error';

/** Options of `ParallelWorkerDashboardModule.register()`. */
export interface DashboardOptions {
  /** Where the page is mounted, under the app's global prefix. Default `'parallel-worker'`. */
  path?: string;
  /**
   * Render and accept the controls (start a run, pause, resume, cancel, retry
   * dead letters, reset). Default `false`: read-only, and every control POST
   * is refused (403).
   */
  controls?: boolean;
  /** Guards for every route of the dashboard (your auth), as `@UseGuards()` takes them. */
  guards?: (CanActivate | Type<CanActivate>)[];
  /** Modules the guards' own dependencies come from (an auth module). */
  imports?: ModuleMetadata['imports'];
  /** The page's title. Default `'Parallel worker'`. */
  title?: string;
  /** How often the page refreshes its figures, in ms; at least 1000. Default `1000`. */
  pollMs?: number;
  /** Dead letters per page. Default `20`. */
  deadPageSize?: number;
  /** Recent runs shown per job. Default `10`. */
  runs?: number;
}

/** The header the page's script sends with every control: a cross-site form cannot set it. */
export const DASHBOARD_HEADER = 'x-parallel-worker-dashboard';

export type ResolvedDashboardOptions = Required<
  Omit<DashboardOptions, 'guards' | 'imports'>
> & {
  guards: NonNullable<DashboardOptions['guards']>;
};

/** The options with their defaults; a clear error at bootstrap for a bad one. */
export function resolveDashboardOptions(
  options: DashboardOptions,
): ResolvedDashboardOptions {
  const path = (options.path ?? 'parallel-worker').replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9._~\-/]*$/.test(path))
    throw new ParallelWorkerConfigError(
      `ParallelWorkerDashboardModule: path ${JSON.stringify(options.path)} must be a plain URL path (letters, digits, '-', '_', '.', '~', '/').`,
    );
  const int = (
    name: keyof DashboardOptions,
    value: unknown,
    fallback: number,
    min: number,
  ) => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || (value as number) < min)
      throw new ParallelWorkerConfigError(
        `ParallelWorkerDashboardModule: option "${name}" must be a whole number >= ${min}, got ${JSON.stringify(value)}.`,
      );
    return value as number;
  };
  return {
    path,
    controls: options.controls === true,
    guards: options.guards ?? [],
    title: options.title ?? 'Parallel worker',
    pollMs: int('pollMs', options.pollMs, 1000, 1000),
    deadPageSize: int('deadPageSize', options.deadPageSize, 20, 1),
    runs: int('runs', options.runs, 10, 0),
  };
}
