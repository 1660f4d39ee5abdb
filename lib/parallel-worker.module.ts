import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { JobRegistry } from './job.registry';
import { ParallelWorker } from './parallel-worker';
import { ParallelWorkerMetadataAccessor } from './parallel-worker-metadata.accessor';
import { ParallelWorkerConfigurableModule } from './parallel-worker.module-definition';
import { ParallelWorkerExplorer } from './parallel-worker.explorer';
import { ParallelWorkerOrchestrator } from './parallel-worker.orchestrator';
import { optionProviders } from './parallel-worker.providers';

/**
 * `ParallelWorkerModule.forRoot(options)` or `.forRootAsync({ useFactory, inject })`:
 * finds the app's `@RangeLoader` / `@RangeHandler` jobs and provides `ParallelWorker`.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    ...optionProviders,
    JobRegistry,
    ParallelWorkerMetadataAccessor,
    ParallelWorkerExplorer,
    ParallelWorkerOrchestrator,
    ParallelWorker,
  ],
  exports: [ParallelWorker],
})
export class ParallelWorkerModule extends ParallelWorkerConfigurableModule {}
