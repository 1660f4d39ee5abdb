import type { Provider } from '@nestjs/common';
import type {
  ParallelWorkerOptions,
  ResolvedParallelWorkerOptions,
} from './interfaces/parallel-worker-options.interface';
import { LOG_CONTEXT } from './parallel-worker.constants';
import { ModuleLogger } from './parallel-worker.logger';
import { PARALLEL_WORKER_MODULE_OPTIONS } from './parallel-worker.module-definition';
import { resolveOptions } from './parallel-worker.options';
import { createStore } from './store/create-store';

export const RESOLVED_OPTIONS = Symbol('PARALLEL_WORKER_RESOLVED_OPTIONS');
export const PARALLEL_WORKER_STORE = Symbol('PARALLEL_WORKER_STORE');

/** Options are validated when the module is created, so bad ones fail the bootstrap, not the first run. */
export const optionProviders: Provider[] = [
  {
    provide: RESOLVED_OPTIONS,
    useFactory: (o: ParallelWorkerOptions) => resolveOptions(o),
    inject: [PARALLEL_WORKER_MODULE_OPTIONS],
  },
  {
    provide: PARALLEL_WORKER_STORE,
    useFactory: (o: ResolvedParallelWorkerOptions) =>
      createStore(o, new ModuleLogger(LOG_CONTEXT, o.logging)),
    inject: [RESOLVED_OPTIONS],
  },
];
