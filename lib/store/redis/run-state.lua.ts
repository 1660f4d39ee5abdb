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
