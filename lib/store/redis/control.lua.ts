import { jobScript } from './job-script';

/**
 * control: pauses, resumes or cancels the active run, for every host.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] 'pause' | 'resume' | 'cancel', [2] declaredBy ('' for none).
 * - Reply: the active run's id, or nil when none is active; { 'declared', declaredBy } when the job is another app's.
 */
export const CONTROL: string = jobScript(`
local refused = other_app(ARGV[2])
if refused then return refused end
if redis.call('HGET', META, 'state') ~= 'running' then return false end
if ARGV[1] == 'cancel' then
  redis.call('HSET', META, 'state', 'stopped', 'control', 'run', 'endedAt', now_ms())
else
  redis.call('HSET', META, 'control', ARGV[1] == 'pause' and 'pause' or 'run')
end
return run_id()
`);
