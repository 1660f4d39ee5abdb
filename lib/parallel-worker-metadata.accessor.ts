import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  RANGE_HANDLER_METADATA,
  RANGE_LOADER_METADATA,
  RANGE_LOADER_OPTIONS_METADATA,
  RANGE_PARTITIONS_METADATA,
  RANGE_TOTAL_METADATA,
} from './parallel-worker.constants';
import type { RangeLoaderOptions } from './decorators/range-loader.decorator';
import type { RangePartitionsOptions } from './decorators/range-partitions.decorator';

/** Typed reads of the decorators' metadata. */
@Injectable()
export class ParallelWorkerMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getLoaderJob(target: Function): string | undefined {
    return this.reflector.get<string | undefined>(
      RANGE_LOADER_METADATA,
      target,
    );
  }

  getLoaderOptions(target: Function): RangeLoaderOptions | undefined {
    return this.reflector.get(RANGE_LOADER_OPTIONS_METADATA, target);
  }

  getTotalJob(target: Function): string | undefined {
    return this.reflector.get<string | undefined>(RANGE_TOTAL_METADATA, target);
  }

  getPartitions(
    target: Function,
  ): { job: string; options: RangePartitionsOptions } | undefined {
    return this.reflector.get(RANGE_PARTITIONS_METADATA, target);
  }

  getHandlerJob(target: Function): string | undefined {
    return this.reflector.get<string | undefined>(
      RANGE_HANDLER_METADATA,
      target,
    );
  }
}
