import { Injectable } from '@nestjs/common';
import type {
  ID,
  LoadContext,
  ParamsValidator,
  Range,
  RangeContext,
} from './interfaces/range.interface';

/** A decorated method: where it lives, for error messages, and how to call it. */
export interface JobMethod<F> {
  /** `Class.method`, as error messages name it. */
  name: string;
  call: F;
}

export interface JobDefinition {
  name: string;
  loader: JobMethod<(cursor: ID | null, ctx: LoadContext) => unknown> & {
    /** `@RangeLoader(job, { params })`: checks run() params. */
    params?: ParamsValidator;
  };
  handler: JobMethod<(range: Range, ctx: RangeContext) => unknown>;
  total?: JobMethod<
    (ctx: {
      job: string;
      runId: string;
      params?: Record<string, unknown>;
    }) => unknown
  >;
  partitions?: JobMethod<
    (ctx: {
      job: string;
      runId: string;
      params?: Record<string, unknown>;
    }) => unknown
  > & {
    count?: number;
  };
}

/** Which app a job is, as the store keeps it: its loader and handler, `Class.method + Class.method`. */
export const declarationOf = (def: JobDefinition): string =>
  `${def.loader.name} + ${def.handler.name}`;

/** The jobs the explorer found, by name. Internal. */
@Injectable()
export class JobRegistry {
  private readonly jobs = new Map<string, JobDefinition>();

  set(jobs: JobDefinition[]): void {
    this.jobs.clear();
    for (const job of jobs) this.jobs.set(job.name, job);
  }

  get(name: string): JobDefinition | undefined {
    return this.jobs.get(name);
  }

  names(): string[] {
    return [...this.jobs.keys()];
  }
}
