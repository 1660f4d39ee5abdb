import { COMMON } from './common.lua';

/**
 * claim: what a host does next for the job.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, [2] leaseMs, [3] request ('' for none: see `replayed` in common).
 * - Reply: { 'lease', reason, token, attempt, runId, range, deadline } for an
 *   expired lease first (attempt + 1, reason 'expired'), else a due retry or
 *   released range; { 'load', cursor } to load after the cursor; { 'wait', ms }
 *   while paused, or while others hold leases or retries are not due;
 *   { 'done' } when nothing is left or no run is active; { 'failed', error };
 *   { 'cancelled' }.
 * Marks the owner as taking part until leaseMs from now.
 */
export const CLAIM: string = `${COMMON}
local state = redis.call('HGET', META, 'state')
if state == 'failed' then return { 'failed', redis.call('HGET', META, 'error') or 'failed' } end
if state == 'stopped' then return { 'cancelled' } end
if state ~= 'running' then return { 'done' } end
local owner, lease_ms, request, now = ARGV[1], tonumber(ARGV[2]), ARGV[3], now_ms()
present(owner, now + lease_ms, now)
local again = replayed(owner, request)
if again then
  local m = redis.call('HGET', LEASES, again[2] .. ':m')
  if m and cjson.decode(m).o == owner then
    local meta = cjson.decode(m)
    local range, deadline = redis.call('HGET', LEASES, again[2] .. ':r'), redis.call('ZSCORE', DEADLINES, again[2])
    return { 'lease', again[3], tonumber(again[2]), meta.a, meta.r, range, tonumber(deadline) }
  end
end
if redis.call('HGET', META, 'control') == 'pause' then return { 'wait', 100 } end
local expired = redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, 1)[1]
if expired then
  local m, range = pop(LEASES, DEADLINES, expired)
  redis.call('HINCRBY', META, 'retried', 1)
  local lease = new_lease(range, m.n, m.a + 1, owner, lease_ms, now)
  remember(owner, request, tok(lease[1]), 'expired')
  return { 'lease', 'expired', unpack(lease) }
end
local due = redis.call('ZRANGEBYSCORE', PENDING, '-inf', now, 'LIMIT', 0, 1)[1]
if due then
  local m, range = pop(PDATA, PENDING, due)
  local lease = new_lease(range, m.n, m.a, owner, lease_ms, now)
  remember(owner, request, tok(lease[1]), m.why)
  return { 'lease', m.why, unpack(lease) }
end
if redis.call('HGET', META, 'exhausted') ~= '1' then return { 'load', redis.call('HGET', META, 'cursor') or 'null' } end
local next_lease = redis.call('ZRANGE', DEADLINES, 0, 0, 'WITHSCORES')[2]
local next_due = redis.call('ZRANGE', PENDING, 0, 0, 'WITHSCORES')[2]
if not next_lease and not next_due then return { 'done' } end
local next = math.min(tonumber(next_lease or next_due), tonumber(next_due or next_lease))
return { 'wait', math.max(1, math.min(100, next - now)) }
`;
