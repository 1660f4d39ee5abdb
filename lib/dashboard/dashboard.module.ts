import { type DynamicModule, Module } from '@nestjs/common';
import { dashboardController } from './dashboard.controller';
import {
  type DashboardOptions,
  resolveDashboardOptions,
} from './dashboard.options';

export { DASHBOARD_HEADER, type DashboardOptions } from './dashboard.options';

/**
 * A page that shows every job of the app (read from the store, so every
 * host's runs) and, with `controls: true`, steers them: start a run with
 * params, pause, resume, cancel, retry dead letters (all or one), reset.
 * Import it next to `ParallelWorkerModule` in an HTTP app (Express or
 * Fastify): `ParallelWorkerDashboardModule.register({ path: 'jobs', guards: [AdminGuard] })`.
 */
@Module({})
export class ParallelWorkerDashboardModule {
  static register(options: DashboardOptions = {}): DynamicModule {
    const resolved = resolveDashboardOptions(options);
    return {
      module: ParallelWorkerDashboardModule,
      imports: options.imports ?? [],
      controllers: [dashboardController(resolved)],
    };
  }
}
