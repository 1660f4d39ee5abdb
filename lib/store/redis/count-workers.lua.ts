import { jobScript } from './job-script';

/**
 * countWorkers: adds to the run's worker counters.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] workers started, [3] workers restarted.
 * - Reply: 1, or 0 when `runId` is not the job's run.
 */
export const COUNT_WORKERS: string = jobScript(`
if run_id() ~= ARGV[1] then return 0 end
redis.call('HINCRBY', META, 'workersStarted', tonumber(ARGV[2]))
redis.call('HINCRBY', META, 'workersRestarted', tonumber(ARGV[3]))
return 1
`);
