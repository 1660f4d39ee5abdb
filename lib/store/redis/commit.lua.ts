import { COMMON } from './common.lua'

/**
 * ARGV: owner, expected cursor (JSON), leaseMs, new cursor (JSON), then per
 * range its JSON and number of ids. Compare-and-set of the cursor and the
 * leases with the next fencing tokens, in one step; no ranges: loading is
 * exhausted. Returns the tokens, not the ranges: the host has those.
 */
export const COMMIT = `${COMMON}
local cursor = redis.call('HGET', META, 'cursor') or 'null'
if redis.call('HGET', META, 'state') ~= 'running' or cursor ~= ARGV[2] then return { 'conflict', cursor } end
if #ARGV == 4 then
  redis.call('HSET', META, 'exhausted', '1')
  return { 'exhausted' }
end
redis.call('HSET', META, 'cursor', ARGV[4])
local now, lease_ms = now_ms(), tonumber(ARGV[3])
-- Tells the host to claim before its next load when older work is waiting.
local due = (#redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, 1) > 0
  or #redis.call('ZRANGEBYSCORE', PENDING, '-inf', now, 'LIMIT', 0, 1) > 0) and 1 or 0
local out = { 'leased', due, run_id(), now + lease_ms }
for i = 5, #ARGV, 2 do
  out[#out + 1] = new_lease(ARGV[i], tonumber(ARGV[i + 1]), 1, ARGV[1], lease_ms, now)[1]
end
return out
`
