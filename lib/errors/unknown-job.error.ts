/** `run()`, `status()` or `stop()` named a job the app does not declare. */
export class UnknownJobError extends Error {
  override readonly name = 'UnknownJobError';

  constructor(
    readonly job: string | undefined,
    message: string,
  ) {
    super(message);
  }
}
