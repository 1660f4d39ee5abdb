export * from './range-handler.decorator';
export * from './range-loader.decorator';
export * from './range-partitions.decorator';
export * from './range-total.decorator';
