import { COMMON } from './common.lua';

/**
 * startRun: starts a run of the job, or joins the active one.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] hasFrom ('1'/'0'), [3] from (JSON), [4] declaredBy ('' for none).
 * - Reply: { runId, joined (1/0) }; { 'busy', runId } when `from` is given
 *   while the run is active; { 'declared', declaredBy } when the job is
 *   another app's and `from` is not given.
 */
export const START_RUN: string = `${COMMON}
local now = now_ms()
local declared = redis.call('HGET', META, 'declaredBy')
if ARGV[4] ~= '' and declared and declared ~= ARGV[4] and ARGV[2] == '0' then return { 'declared', declared } end
if redis.call('HGET', META, 'state') == 'running' then
  if ARGV[2] == '0' then return { run_id(), 1 } end
  if active(now) then return { 'busy', run_id() } end
end
if ARGV[4] ~= '' then redis.call('HSET', META, 'declaredBy', ARGV[4]) end
if ARGV[2] == '1' then
  redis.call('HSET', META, 'cursor', ARGV[3])
  if ARGV[3] == 'null' then redis.call('DEL', PENDING, PDATA) end
end
redis.call('DEL', REPLIES)
redis.call('HDEL', META, 'total')
redis.call('HSET', META, 'runId', ARGV[1], 'state', 'running', 'control', 'run', 'error', '', 'exhausted', '0', 'startedAt', now, 'endedAt', '',
  'ids', 0, 'completed', 0, 'retried', 0, 'dead', 0, 'workersStarted', 0, 'workersRestarted', 0)
return { ARGV[1], 0 }
`;
