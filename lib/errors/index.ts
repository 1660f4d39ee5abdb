export * from './invalid-range.error';
export * from './parallel-worker-config.error';
export * from './run-failed.error';
export * from './unknown-job.error';
export * from './run-refused.error';
export * from './store-unavailable.error';
export * from './invalid-params.error';
export * from './range-items-failed.error';
