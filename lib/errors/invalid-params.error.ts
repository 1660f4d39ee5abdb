/**
 * `run(job, { params })` was given params the job refuses: not JSON (a
 * function, a `Date`, `NaN`, a cycle, …) or not valid for the job's params
 * class or function. Nothing was started.
 */
export class InvalidParamsError extends Error {
  override readonly name = 'InvalidParamsError';

  constructor(
    readonly job: string,
    readonly params: unknown,
    /** What is wrong, one line per problem (`since: must be a date string`). */
    readonly problems: string[],
    message: string,
  ) {
    super(message);
  }
}
