/** Bad options or bad decorator use, found at bootstrap. */
export class ParallelWorkerConfigError extends Error {
  override readonly name = 'ParallelWorkerConfigError';
}
