import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import { ParallelWorkerConfigError } from './errors/parallel-worker-config.error';
import {
  type JobDefinition,
  type JobMethod,
  JobRegistry,
} from './job.registry';
import { ParallelWorkerMetadataAccessor } from './parallel-worker-metadata.accessor';
import { show } from './parallel-worker.messages';
import type { ParamsValidator } from './interfaces/range.interface';
import { isClass } from './run/run-params';

const JOB_NAME = /^[A-Za-z0-9_.:-]+$/;

type Found = {
  loaders: (JobMethod<any> & { params?: ParamsValidator })[];
  handlers: JobMethod<any>[];
  totals: JobMethod<any>[];
  partitions: (JobMethod<any> & { count?: number })[];
};

/** Finds `@RangeLoader` / `@RangeHandler` methods on providers and pairs them per job. */
@Injectable()
export class ParallelWorkerExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: ParallelWorkerMetadataAccessor,
    private readonly registry: JobRegistry,
  ) {}

  private explored = false;

  onModuleInit(): void {
    this.explore();
  }

  /**
   * Finds the jobs once. Also called by `run()`: an HTTP app's worker calls
   * `run()` right after `NestFactory.create()`, before any `init()`.
   */
  explore(): void {
    if (this.explored) return;
    this.explored = true;
    const found = new Map<string, Found>();
    for (const wrapper of this.discovery.getProviders())
      this.exploreProvider(wrapper, found);
    this.registry.set([...found].map(([name, f]) => this.pair(name, f)));
  }

  private exploreProvider(
    wrapper: InstanceWrapper,
    found: Map<string, Found>,
  ): void {
    const { instance } = wrapper;
    if (!instance || wrapper.isAlias || typeof instance !== 'object') return;
    const prototype = Object.getPrototypeOf(instance);
    if (!prototype) return;
    for (const method of this.scanner.getAllMethodNames(prototype)) {
      const target = prototype[method];
      const loaderJob = this.accessor.getLoaderJob(target);
      const handlerJob = this.accessor.getHandlerJob(target);
      const totalJob = this.accessor.getTotalJob(target);
      const partitions = this.accessor.getPartitions(target);
      const partitionsJob = partitions?.job;
      if (
        loaderJob === undefined &&
        handlerJob === undefined &&
        totalJob === undefined &&
        partitionsJob === undefined
      )
        continue;
      const name = `${instance.constructor.name}.${method}`;
      const job = (loaderJob ??
        handlerJob ??
        totalJob ??
        partitionsJob) as string;
      if (!wrapper.isDependencyTreeStatic()) {
        throw new ParallelWorkerConfigError(
          `${name} (job "${job}") is on a request-scoped or transient provider. Range loaders and handlers must live on a singleton provider: remove the scope from ${instance.constructor.name} or move the method.`,
        );
      }
      if (
        [loaderJob, handlerJob, totalJob, partitionsJob].filter(
          (j) => j !== undefined,
        ).length > 1
      ) {
        throw new ParallelWorkerConfigError(
          `${name} has more than one of @RangeLoader, @RangeHandler, @RangeTotal and @RangePartitions. Give each its own method.`,
        );
      }
      const count = partitions?.options?.count;
      if (
        count !== undefined &&
        (!Number.isInteger(count) || count < 1 || count > 10_000)
      ) {
        throw new ParallelWorkerConfigError(
          `${name}: @RangePartitions('${job}', { count }) must be a whole number from 1 to 10000, got ${JSON.stringify(count)}.`,
        );
      }
      if (typeof job !== 'string' || !JOB_NAME.test(job)) {
        throw new ParallelWorkerConfigError(
          `${name}: job name ${JSON.stringify(job)} is not valid. Use letters, digits, '_', '-', '.' or ':'.`,
        );
      }
      const entry = found.get(job) ?? {
        loaders: [],
        handlers: [],
        totals: [],
        partitions: [],
      };
      found.set(job, entry);
      const call = (...args: unknown[]) => instance[method](...args);
      const params = this.accessor.getLoaderOptions(target)?.params;
      if (params !== undefined && typeof params !== 'function')
        throw new ParallelWorkerConfigError(
          `${name}: @RangeLoader('${job}', { params }) must be a class (checked with class-validator) or a function, got ${show(params)}.`,
        );
      if (params && isClass(params) && !canLoad('class-validator'))
        throw new ParallelWorkerConfigError(
          `${name}: @RangeLoader('${job}', { params: ${params.name} }) needs class-validator to check ${params.name}: npm install class-validator class-transformer, or give a function instead.`,
        );
      if (partitionsJob !== undefined)
        entry.partitions.push({ name, call, count });
      else if (loaderJob !== undefined)
        entry.loaders.push({ name, call, ...(params && { params }) });
      else
        (handlerJob !== undefined ? entry.handlers : entry.totals).push({
          name,
          call,
        });
    }
  }

  private pair(
    job: string,
    { loaders, handlers, totals, partitions }: Found,
  ): JobDefinition {
    const names = (list: JobMethod<any>[]) =>
      list.map((m) => m.name).join(' and ');
    if (loaders.length > 1)
      throw new ParallelWorkerConfigError(
        `Job "${job}" has two range loaders: ${names(loaders)}. Keep one @RangeLoader('${job}') or give the other its own job name.`,
      );
    if (handlers.length > 1)
      throw new ParallelWorkerConfigError(
        `Job "${job}" has two range handlers: ${names(handlers)}. Keep one @RangeHandler('${job}') or give the other its own job name.`,
      );
    if (loaders.length === 0 && handlers.length === 0)
      throw new ParallelWorkerConfigError(
        `Job "${job}" has a ${totals.length ? `@RangeTotal (${names(totals)})` : `@RangePartitions (${names(partitions)})`} but no range loader or handler. Add them, or fix the job name.`,
      );
    if (loaders.length === 0)
      throw new ParallelWorkerConfigError(
        `Job "${job}" has a range handler (${names(handlers)}) but no range loader. Add a @RangeLoader('${job}') method to a provider.`,
      );
    if (handlers.length === 0)
      throw new ParallelWorkerConfigError(
        `Job "${job}" has a range loader (${names(loaders)}) but no range handler. Add a @RangeHandler('${job}') method to a provider.`,
      );
    if (totals.length > 1)
      throw new ParallelWorkerConfigError(
        `Job "${job}" has two @RangeTotal methods: ${names(totals)}. Keep one.`,
      );
    if (partitions.length > 1)
      throw new ParallelWorkerConfigError(
        `Job "${job}" has two @RangePartitions methods: ${names(partitions)}. Keep one.`,
      );
    return {
      name: job,
      loader: loaders[0],
      handler: handlers[0],
      ...(totals.length ? { total: totals[0] } : {}),
      ...(partitions.length ? { partitions: partitions[0] } : {}),
    };
  }
}

/** True when the app can load `name` (an optional peer). */
function canLoad(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}
