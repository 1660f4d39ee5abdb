export * from './parallel-worker.health';
