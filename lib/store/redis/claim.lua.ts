import { jobScript } from './job-script';

/**
 * claim: what a host does next for the job.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, [2] leaseMs, [3] request ('' for none: see `replayed` in common),
 *   then the partitions the owner loads already (indexes).
 * - Reply: { 'lease', reason, token, attempt, runId, range, deadline } for an
 *   expired lease first (attempt + 1, reason 'expired'), else a due retry or
 *   released range; { 'load', cursor } to load after the cursor, or
 *   { 'load', cursor, partition } (the partition's cursor) when the job has
 *   partitions; { 'wait', ms } while paused or on hold, while every partition left is
 *   being loaded or the owner holds its share of them, or while others hold leases or retries are not due;
 *   { 'done' } when nothing is left or no run is active; { 'failed', error, the parts of the
 *   state lost ('' for none), runId };
 *   { 'cancelled' }.
 * Marks the owner as taking part until leaseMs from now; a partition handed
 * out to load is the owner's until then too.
 */
export const CLAIM: string = jobScript(`
-- The error, and the parts of the state lost ('' for none) with the run's id (the host words the error then).
local function failed()
  return { 'failed', redis.call('HGET', META, 'error') or 'failed', redis.call('HGET', META, 'lost') or '', run_id() }
end
local state = redis.call('HGET', META, 'state')
if state == 'failed' then return failed() end
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
-- On hold (hold.lua): nothing is handed out, no expired lease, no due retry; asked again when it ends, within a second.
local hold_until = tonumber(redis.call('HGET', META, 'holdUntil') or '0')
if hold_until > now then return { 'wait', math.max(1, math.min(hold_until - now, 1000)) } end
local expired = redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, 1)[1]
if expired then
  local m, range = pop(LEASES, DEADLINES, expired)
  if not m then
    mark_lost('leases')
    return failed()
  end
  redis.call('HINCRBY', META, 'retried', 1)
  local lease = new_lease(range, m.n, m.a + 1, owner, lease_ms, now)
  remember(owner, request, tok(lease[1]), 'expired')
  return { 'lease', 'expired', unpack(lease) }
end
local due = redis.call('ZRANGEBYSCORE', PENDING, '-inf', now, 'LIMIT', 0, 1)[1]
if due then
  local m, range = pop(PDATA, PENDING, due)
  if not m then
    mark_lost('pdata')
    return failed()
  end
  local lease = new_lease(range, m.n, m.a, owner, lease_ms, now)
  remember(owner, request, tok(lease[1]), m.why)
  return { 'lease', m.why, unpack(lease) }
end
local parts = parts_n()
if parts then
  -- The partition to load: not exhausted, not one the owner loads already, not one another host loads (until its
  -- time passes); the fewest ids handed out this run, so the hosts spread over them; the lowest index on ties.
  local h, mine = {}, {}
  local flat = redis.call('HGETALL', PARTS)
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  for i = 4, #ARGV do mine[ARGV[i]] = true end
  -- A host takes a partition it does not hold yet only while it holds fewer than its share (those left, over the
  -- hosts taking part), so a host that joins later gets some.
  local left_n, held = 0, 0
  for i = 0, parts - 1 do
    if h[i .. ':exhausted'] ~= '1' then
      left_n = left_n + 1
      if h[i .. ':owner'] == owner and tonumber(h[i .. ':until'] or 0) > now then held = held + 1 end
    end
  end
  local hosts = redis.call('ZCOUNT', HOSTS, '(' .. now, '+inf')
  local share = math.ceil(left_n / math.max(1, hosts))
  local room = held < share
  local pick, left = nil, false
  for i = 0, parts - 1 do
    if h[i .. ':exhausted'] ~= '1' then
      left = true
      local by = h[i .. ':owner']
      local free = not by or tonumber(h[i .. ':until'] or 0) <= now
      if not mine[tostring(i)] and (by == owner or (free and room))
        and (not pick or tonumber(h[i .. ':ids']) < tonumber(h[pick .. ':ids'])) then pick = i end
    end
  end
  if not pick and room then
    -- Nothing free, and this host has less than its share: take one over from a host that has more (its next
    -- commit there is refused), so a host that joined later gets its share at once.
    local count = {}
    for i = 0, parts - 1 do
      local by = h[i .. ':owner']
      if h[i .. ':exhausted'] ~= '1' and by and tonumber(h[i .. ':until'] or 0) > now then count[by] = (count[by] or 0) + 1 end
    end
    for i = 0, parts - 1 do
      local by = h[i .. ':owner']
      if h[i .. ':exhausted'] ~= '1' and not mine[tostring(i)] and by and by ~= owner and (count[by] or 0) > share
        and (not pick or tonumber(h[i .. ':ids']) < tonumber(h[pick .. ':ids'])) then pick = i end
    end
  end
  if pick then
    redis.call('HSET', PARTS, pick .. ':owner', owner, pick .. ':until', tok(now + lease_ms))
    return { 'load', h[pick .. ':cursor'], pick }
  end
  if left then return { 'wait', 100 } end
elseif redis.call('HGET', META, 'exhausted') ~= '1' then
  return { 'load', redis.call('HGET', META, 'cursor') or 'null' }
end
local next_lease = redis.call('ZRANGE', DEADLINES, 0, 0, 'WITHSCORES')[2]
local next_due = redis.call('ZRANGE', PENDING, 0, 0, 'WITHSCORES')[2]
if not next_lease and not next_due then return { 'done' } end
local next = math.min(tonumber(next_lease or next_due), tonumber(next_due or next_lease))
return { 'wait', math.max(1, math.min(100, next - now)) }
`);
