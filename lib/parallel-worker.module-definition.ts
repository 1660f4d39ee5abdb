import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ParallelWorkerOptions } from './interfaces/parallel-worker-options.interface';

export const {
  ConfigurableModuleClass: ParallelWorkerConfigurableModule,
  MODULE_OPTIONS_TOKEN: PARALLEL_WORKER_MODULE_OPTIONS,
  OPTIONS_TYPE: PARALLEL_WORKER_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: PARALLEL_WORKER_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ParallelWorkerOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
