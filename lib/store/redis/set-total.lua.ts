import { jobScript } from './job-script';

/**
 * setTotal: records the job's total for run `runId`.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] total.
 * - Reply: 1.
 */
export const SET_TOTAL: string = jobScript(`
if run_id() == ARGV[1] then redis.call('HSET', META, 'total', ARGV[2]) end
return 1
`);
