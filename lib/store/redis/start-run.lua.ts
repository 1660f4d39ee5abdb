import { COMMON } from './common.lua'

/**
 * ARGV: runId, hasFrom ('1'/'0'), from (JSON), declaredBy ('' for none).
 * Returns { runId, joined }; { 'busy', runId } while live leases exist and
 * `from` is given; { 'declared', declaredBy } when the job is another app's.
 */
export const START_RUN = `${COMMON}
local now = now_ms()
local declared = redis.call('HGET', META, 'declaredBy')
if ARGV[4] ~= '' and declared and declared ~= ARGV[4] and ARGV[2] == '0' then return { 'declared', declared } end
if redis.call('HGET', META, 'state') == 'running' then
  if ARGV[2] == '0' then return { run_id(), 1 } end
  if #redis.call('ZRANGEBYSCORE', DEADLINES, '(' .. now, '+inf', 'LIMIT', 0, 1) > 0 then return { 'busy', run_id() } end
end
if ARGV[4] ~= '' then redis.call('HSET', META, 'declaredBy', ARGV[4]) end
if ARGV[2] == '1' then
  redis.call('HSET', META, 'cursor', ARGV[3])
  if ARGV[3] == 'null' then redis.call('DEL', PENDING, PDATA) end
end
redis.call('HDEL', META, 'total')
redis.call('HSET', META, 'runId', ARGV[1], 'state', 'running', 'control', 'run', 'error', '', 'exhausted', '0', 'startedAt', now, 'endedAt', '',
  'ids', 0, 'completed', 0, 'retried', 0, 'dead', 0, 'workersStarted', 0, 'workersRestarted', 0)
return { ARGV[1], 0 }
`
