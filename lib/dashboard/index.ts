export {
  DASHBOARD_HEADER,
  type DashboardOptions,
  ParallelWorkerDashboardModule,
} from './dashboard.module';
