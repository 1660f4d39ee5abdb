import { COMMON } from './common.lua'

/** ARGV: runId, hasFrom ('1'/'0'), from (JSON). Returns { runId, joined } or an error while live leases exist. */
export const START_RUN = `${COMMON}
local now = now_ms()
if redis.call('HGET', META, 'state') == 'running' then
  if ARGV[2] == '0' then return { run_id(), 1 } end
  if #redis.call('ZRANGEBYSCORE', DEADLINES, '(' .. now, '+inf', 'LIMIT', 0, 1) > 0 then
    return redis.error_reply('run ' .. run_id() .. ' is active with leased ranges; wait for it or stop it before moving the cursor')
  end
end
if ARGV[2] == '1' then
  redis.call('HSET', META, 'cursor', ARGV[3])
  if ARGV[3] == 'null' then redis.call('DEL', PENDING, PDATA) end
end
redis.call('HDEL', META, 'total')
redis.call('HSET', META, 'runId', ARGV[1], 'state', 'running', 'control', 'run', 'error', '', 'exhausted', '0', 'startedAt', now, 'endedAt', '',
  'ids', 0, 'completed', 0, 'retried', 0, 'dead', 0, 'workersStarted', 0, 'workersRestarted', 0)
return { ARGV[1], 0 }
`
