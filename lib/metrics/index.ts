export * from './parallel-worker-metrics.module';
