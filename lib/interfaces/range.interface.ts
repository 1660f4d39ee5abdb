import type {
  FenceCallOptions,
  FenceTransaction,
} from '../fence/fence-transaction';
import type { Logger } from '@nestjs/common';

/** An id as the loader returns it. `bigint` ids travel as their decimal string. */
export type ID = string | number;

/** What a `@RangeHandler` receives: the ids, the cursor before them and the loader's payload. */
// P is unused: kept so `Range<Payload>`, as written for the seed, still compiles.
// eslint-disable-next-line @typescript-eslint/no-unused-vars
export interface Range<P extends object = Record<string, unknown>> {
  /** Ids to process, sorted ascending. */
  idsRange: ID[];
  /** The cursor before this range (`null` for the first range of a fresh job). */
  lastId: ID | null;
  /** Anything else the loader returned in its range object. */
  [payload: string]: unknown;
}

/**
 * What a `@RangeLoader` may return: sorted ids (the cursor becomes the last one),
 * a range object `{ lastId, idsRange?, ...payload }`, or `[]`/`null`/`undefined`
 * when there is nothing left.
 */
export type LoaderResult =
  | ReadonlyArray<ID | bigint>
  | {
      lastId: ID | bigint;
      idsRange?: ReadonlyArray<ID | bigint>;
      [payload: string]: unknown;
    }
  | null
  | undefined;

/** Second argument of a `@RangeLoader`. */
export interface LoadContext {
  job: string;
  runId: string;
  /** Range size the module suggests; a loader may ignore it. */
  limit: number;
  /** What `run(job, { params })` was given (the same on every host and worker of the run). */
  params?: Record<string, unknown>;
  /**
   * The partition this call loads, when the job has a `@RangePartitions`
   * method: return only ids in `(after, upTo]` (`upTo: null`: no upper bound).
   */
  partition?: {
    index: number;
    count: number;
    after: ID | null;
    upTo: ID | null;
  };
}

/** Second argument of a `@RangeHandler`. */
export interface RangeContext {
  job: string;
  runId: string;
  /** 1 on the first hand-out of this range, more when it is handed out again. */
  attempt: number;
  /** Fencing token of this lease: increases per job, for handlers that guard their own writes. */
  token: number;
  /** Generated id of the worker process (never a pid). */
  workerId: string;
  /** Aborts when the lease is lost or the run is stopped. */
  signal: AbortSignal;
  logger: Logger;
  /** What `run(job, { params })` was given (the same on every host and worker of the run). */
  params?: Record<string, unknown>;
  /**
   * Exactly-once effects: call it inside the transaction that writes the
   * range's effects, first. It records the range in the fence table of that
   * database, in that transaction, and resolves `true` when this transaction
   * is the first to apply the range (go on), `false` when an earlier attempt
   * committed it (skip the writes: the range counts done, once). While another
   * attempt's transaction holding the range is open, it waits for it. `tx`: a
   * node-postgres client, a mysql2 connection, a better-sqlite3 or node:sqlite
   * database, a Knex transaction, a TypeORM `EntityManager` or `QueryRunner`,
   * or a function `(sql, params) => rows changed` with `{ dialect }`.
   */
  fence(tx: FenceTransaction, options?: FenceCallOptions): Promise<boolean>;
}

/** What `@RangeLoader(job, { params })` takes: a class (checked with class-validator) or a function. */
export type ParamsValidator =
  | (abstract new (...args: any[]) => object)
  | ((params: Record<string, unknown>) => unknown);
