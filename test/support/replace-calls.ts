import type { JobStore } from '../../lib';

/**
 * A job's handle with some of its calls replaced; every other call goes to
 * `job` as it is. For stores of tests that slow down, count or fail calls.
 */
export function replaceCalls(
  job: JobStore,
  calls: Partial<JobStore>,
): JobStore {
  return new Proxy(job, {
    get(target, key) {
      const call = (calls as Record<PropertyKey, unknown>)[key];
      if (call !== undefined) return call;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
