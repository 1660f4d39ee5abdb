import { COMMON } from './common.lua'

/**
 * ARGV: owner, leaseMs. An expired lease first (attempt + 1), then a due
 * retry or released range, else the cursor to load after; 'wait' while others
 * still hold leases or retries are not due; 'done' when nothing is left.
 */
export const CLAIM = `${COMMON}
local state = redis.call('HGET', META, 'state')
if state == 'failed' then return { 'failed', redis.call('HGET', META, 'error') or 'failed' } end
if state == 'stopped' then return { 'cancelled' } end
if state ~= 'running' then return { 'done' } end
if redis.call('HGET', META, 'control') == 'pause' then return { 'wait', 100 } end
local owner, lease_ms, now = ARGV[1], tonumber(ARGV[2]), now_ms()
local expired = redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, 1)[1]
if expired then
  local m, range = pop(LEASES, DEADLINES, expired)
  redis.call('HINCRBY', META, 'retried', 1)
  local lease = new_lease(range, m.n, m.a + 1, owner, lease_ms, now)
  return { 'lease', 'expired', unpack(lease) }
end
local due = redis.call('ZRANGEBYSCORE', PENDING, '-inf', now, 'LIMIT', 0, 1)[1]
if due then
  local m, range = pop(PDATA, PENDING, due)
  local lease = new_lease(range, m.n, m.a, owner, lease_ms, now)
  return { 'lease', m.why, unpack(lease) }
end
if redis.call('HGET', META, 'exhausted') ~= '1' then return { 'load', redis.call('HGET', META, 'cursor') or 'null' } end
local next_lease = redis.call('ZRANGE', DEADLINES, 0, 0, 'WITHSCORES')[2]
local next_due = redis.call('ZRANGE', PENDING, 0, 0, 'WITHSCORES')[2]
if not next_lease and not next_due then return { 'done' } end
local next = math.min(tonumber(next_lease or next_due), tonumber(next_due or next_lease))
return { 'wait', math.max(1, math.min(100, next - now)) }
`
