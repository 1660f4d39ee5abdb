import { COMMON } from './common.lua'

/**
 * ARGV: owner, expected cursor (JSON), range (JSON, '' when the loader
 * returned nothing), new cursor (JSON), leaseMs, number of ids. Compare-and-set of the cursor
 * and the lease with the next fencing token, in one step.
 */
export const COMMIT = `${COMMON}
local cursor = redis.call('HGET', META, 'cursor') or 'null'
if redis.call('HGET', META, 'state') ~= 'running' or cursor ~= ARGV[2] then return { 'conflict', cursor } end
if ARGV[3] == '' then
  redis.call('HSET', META, 'exhausted', '1')
  return { 'exhausted' }
end
redis.call('HSET', META, 'cursor', ARGV[4])
local now = now_ms()
-- Tells the host to claim before its next load when older work is waiting.
local due = (#redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, 1) > 0
  or #redis.call('ZRANGEBYSCORE', PENDING, '-inf', now, 'LIMIT', 0, 1) > 0) and 1 or 0
local lease = new_lease(ARGV[3], tonumber(ARGV[6]), 1, ARGV[1], tonumber(ARGV[5]), now)
return { 'leased', due, unpack(lease) }
`
