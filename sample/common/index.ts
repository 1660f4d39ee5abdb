export * from './env';
export * from './logger.module';
export * from './parallel-worker.options';
export * from './redis.module';
