export * from './range-handler.decorator'
export * from './range-loader.decorator'
