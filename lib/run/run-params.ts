import { InvalidParamsError } from '../errors/invalid-params.error';
import type { JobDefinition } from '../job.registry';
import { show } from '../parallel-worker.messages';
import { TimeLimitError, withinMs } from './time-limit';
import { toWireError } from '../cluster/wire-error';

const isPlain = (v: object) => {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** Why `value` (at `path`) cannot travel as JSON, or undefined when it can. */
function notJson(value: unknown, path: string): string | undefined {
  if (value instanceof Date)
    return `${path} is a Date: pass date.toISOString() and parse it in the job`;
  if (typeof value === 'bigint')
    return `${path} is a bigint (${value}n): pass it as a string`;
  if (typeof value === 'number' && !Number.isFinite(value))
    return `${path} is ${value}, which JSON cannot hold`;
  if (['function', 'symbol', 'undefined'].includes(typeof value))
    return `${path} is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}, which JSON cannot hold`;
  if (typeof value === 'object' && value !== null && !Array.isArray(value))
    if (!isPlain(value))
      return `${path} is a ${value.constructor?.name ?? 'class instance'}, not a plain object, array or JSON value`;
  return undefined;
}

/** `value` as JSON text with object keys sorted; throws the first problem met. */
function canonical(value: unknown, path: string, seen: Set<object>): string {
  const problem = notJson(value, path);
  if (problem) throw new Error(problem);
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (seen.has(value)) throw new Error(`${path} refers back to itself`);
  seen.add(value);
  const text = Array.isArray(value)
    ? `[${Array.from({ length: value.length }, (_, i) => {
        if (!(i in value))
          throw new Error(
            `${path}[${i}] is an empty slot of a sparse array, which JSON cannot hold`,
          );
        return canonical(value[i], `${path}[${i}]`, seen);
      }).join(',')}]`
    : `{${Object.keys(value)
        .sort()
        // An undefined property is absent, as in JSON.
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .map(
          (k) =>
            `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k], /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, seen)}`,
        )
        .join(',')}}`;
  seen.delete(value);
  return text;
}

/**
 * The params of `run(job, { params })` as the JSON text stored with the run
 * (object keys sorted, so equal params are equal text); undefined for none.
 * Refuses anything but a plain object of JSON values, naming the key.
 */
export function paramsText(job: string, params: unknown): string | undefined {
  if (params === undefined || params === null) return undefined;
  const problems: string[] = [];
  if (typeof params !== 'object' || Array.isArray(params) || !isPlain(params))
    problems.push(
      `params must be a plain object of JSON values, got ${show(params)}`,
    );
  else
    try {
      return canonical(params, 'params', new Set());
    } catch (e) {
      problems.push((e as Error).message);
    }
  throw new InvalidParamsError(
    job,
    params,
    problems,
    `Job "${job}" was not started: ${problems[0]}.`,
  );
}

/** True for a class (checked with class-validator), false for a plain function. */
export const isClass = (fn: Function): boolean =>
  /^class[\s{]/.test(Function.prototype.toString.call(fn));

/** Loads an optional peer of the app; undefined when the app does not have it. */
function optional<T>(name: string): T | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch {
    return undefined;
  }
}

/**
 * Checks the params with the job's `@RangeLoader(job, { params })`: a class
 * is validated with class-validator (built with class-transformer when the
 * app has it), a function may throw or return `false` (or a message); either
 * has `timeoutMs` to answer (async validators may query). Rejects with
 * InvalidParamsError before anything starts.
 */
export async function checkParams(
  def: JobDefinition,
  params: Record<string, unknown> | undefined,
  timeoutMs = 0,
): Promise<void> {
  const check = def.loader.params;
  if (!check) return;
  const given = params ?? {};
  let problems: string[];
  if (isClass(check)) {
    problems = await withinMs(timeoutMs, () =>
      classProblems(check as new () => object, given, def.loader.name),
    ).catch((e: unknown) => {
      if (e instanceof TimeLimitError) return [timedOut(timeoutMs)];
      throw e;
    });
  } else {
    try {
      const verdict = await withinMs(timeoutMs, () =>
        (check as (p: unknown) => unknown)(given),
      );
      problems =
        verdict === false
          ? ['the params function returned false']
          : typeof verdict === 'string'
            ? [verdict]
            : [];
    } catch (e) {
      problems = [
        e instanceof TimeLimitError
          ? timedOut(timeoutMs)
          : toWireError(e).message,
      ];
    }
  }
  if (problems.length)
    throw new InvalidParamsError(
      def.name,
      params,
      problems,
      `Job "${def.name}" was not started: its params are not valid (${def.loader.name} @RangeLoader params): ${problems.join('; ')}.`,
    );
}

const timedOut = (ms: number) =>
  `the params check did not answer within loaderTimeoutMs (${ms} ms)`;

interface ValidationErrorLike {
  property: string;
  constraints?: Record<string, string>;
  children?: ValidationErrorLike[];
}

async function classProblems(
  dto: new () => object,
  params: Record<string, unknown>,
  loader: string,
): Promise<string[]> {
  const validator = optional<{
    validate(o: object, options?: object): Promise<ValidationErrorLike[]>;
  }>('class-validator');
  if (!validator)
    return [
      `${dto.name} is a class, and class-validator is not installed: npm install class-validator (and class-transformer), or give ${loader} a function instead`,
    ];
  const transformer = optional<{
    plainToInstance(cls: Function, plain: object): object;
  }>('class-transformer');
  const instance = transformer
    ? transformer.plainToInstance(dto, params)
    : Object.assign(new dto(), params);
  const errors = await validator.validate(instance, {
    forbidUnknownValues: true,
  });
  const lines: string[] = [];
  const walk = (list: ValidationErrorLike[], prefix: string) => {
    for (const e of list) {
      const at = prefix ? `${prefix}.${e.property}` : e.property;
      // class-validator's messages start with the property's own name.
      for (const message of Object.values(e.constraints ?? {}))
        lines.push(prefix ? `${prefix}.${message}` : message);
      walk(e.children ?? [], at);
    }
  };
  walk(errors, '');
  return lines;
}

/** `value` deep-frozen: the params one call sees cannot be changed for the next. */
export function frozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}
