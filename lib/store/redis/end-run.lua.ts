import { jobScript } from './job-script';

/**
 * endRun: ends the active run `runId` as completed or failed; no-op when it already ended.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] state ('completed'/'failed'), [3] error ('' for none).
 * - Reply: 1 when it ended the run, 0 otherwise.
 */
export const END_RUN: string = jobScript(`
if run_id() ~= ARGV[1] or redis.call('HGET', META, 'state') ~= 'running' then return 0 end
redis.call('HSET', META, 'state', ARGV[2], 'error', ARGV[3], 'endedAt', now_ms())
return 1
`);
