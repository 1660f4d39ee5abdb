import { COMMON } from './common.lua';

/**
 * control: pauses, resumes or cancels the active run, for every host.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] 'pause' | 'resume' | 'cancel'.
 * - Reply: the active run's id, or nil when none is active.
 */
export const CONTROL: string = `${COMMON}
if redis.call('HGET', META, 'state') ~= 'running' then return false end
if ARGV[1] == 'cancel' then
  redis.call('HSET', META, 'state', 'stopped', 'control', 'run', 'endedAt', now_ms())
else
  redis.call('HSET', META, 'control', ARGV[1] == 'pause' and 'pause' or 'run')
end
return run_id()
`;
