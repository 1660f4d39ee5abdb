import { COMMON } from './common.lua'

/** ARGV: runId, state, error. Ends the active run `runId`; no-op when it already ended. */
export const END_RUN = `${COMMON}
if run_id() ~= ARGV[1] or redis.call('HGET', META, 'state') ~= 'running' then return 0 end
redis.call('HSET', META, 'state', ARGV[2], 'error', ARGV[3], 'endedAt', now_ms())
return 1
`

/** ARGV: runId, started, restarted. */
export const COUNT_WORKERS = `${COMMON}
if run_id() ~= ARGV[1] then return 0 end
redis.call('HINCRBY', META, 'workersStarted', tonumber(ARGV[2]))
redis.call('HINCRBY', META, 'workersRestarted', tonumber(ARGV[3]))
return 1
`

/** The meta hash as a flat list, the sizes of the lease, pending and dead sets, and store time. */
export const STATE = `${COMMON}
return { redis.call('HGETALL', META), redis.call('ZCARD', DEADLINES), redis.call('ZCARD', PENDING), redis.call('LLEN', DEAD), now_ms() }
`

/** ARGV: wanted, perSecond. Hand-outs of the current second, shared by every host: { granted, waitMs }. */
export const TAKE_PERMITS = `${COMMON}
local now = now_ms()
local second = math.floor(now / 1000)
local used = 0
if tonumber(redis.call('HGET', META, 'permitSecond') or '-1') == second then used = tonumber(redis.call('HGET', META, 'permitUsed')) end
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
redis.call('HSET', META, 'permitSecond', second, 'permitUsed', used + granted)
return { granted, granted > 0 and 0 or (1000 - now % 1000) }
`

/** ARGV: 'pause' | 'resume' | 'cancel'. Returns the active run's id, or false when none is active. */
export const CONTROL = `${COMMON}
if redis.call('HGET', META, 'state') ~= 'running' then return false end
if ARGV[1] == 'cancel' then
  redis.call('HSET', META, 'state', 'stopped', 'control', 'run', 'endedAt', now_ms())
else
  redis.call('HSET', META, 'control', ARGV[1] == 'pause' and 'pause' or 'run')
end
return run_id()
`

/** Cursor back to the start, nothing pending; refused while the active run holds a live lease. */
export const RESET = `${COMMON}
local now = now_ms()
if redis.call('HGET', META, 'state') == 'running' then
  if #redis.call('ZRANGEBYSCORE', DEADLINES, '(' .. now, '+inf', 'LIMIT', 0, 1) > 0 then
    return redis.error_reply('run ' .. run_id() .. ' is active; cancel it or wait for it before resetting the job')
  end
  redis.call('HSET', META, 'state', 'stopped', 'endedAt', now)
end
redis.call('HSET', META, 'cursor', 'null', 'exhausted', '0')
redis.call('DEL', LEASES, DEADLINES, PENDING, PDATA)
return 1
`

/** ARGV: runId, total. */
export const SET_TOTAL = `${COMMON}
if run_id() == ARGV[1] then redis.call('HSET', META, 'total', ARGV[2]) end
return 1
`
