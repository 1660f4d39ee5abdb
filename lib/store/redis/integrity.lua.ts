/**
 * Included in every script (after the key names and `now_ms`): what the job's
 * state should hold, so a part of it lost (a key evicted under an allkeys-*
 * maxmemory-policy, deleted, or missing on a replica promoted without the
 * last writes) is seen as lost, never taken for "nothing left". Redis deletes
 * an empty hash, zset or list, so a missing key alone tells nothing: every
 * script records in META the size of each part it may have changed
 * (`n:<part>`), and every script first compares the parts with that record.
 * A part smaller or larger than recorded marks the job `lost` (the parts, in
 * META) and fails its active run; only `from` (start-run) or reset clear it.
 * META holds the record itself: META lost (or without its run state) while
 * any other part is there counts as lost too (part 'meta'). The parts left
 * cannot be trusted without it: each partition's cursor in PARTS was moved on
 * by ranges whose leases or retries may have gone with it, and a new run would
 * load on from those cursors, skipping them. With nothing else there (the
 * whole state gone, FLUSHALL) a new run starts from the first row: rows may be
 * handled again, none skipped. A META kept from before records (it has its
 * run state) is recorded from the next script on. Not recorded: HOSTS and
 * REPLIES (rebuilt by the next calls; their loss hands a range out twice at
 * worst, never skips one), HIST and HISTREC (records of ended runs, not run
 * state).
 */
export const INTEGRITY: string = `
local STATE_PARTS = { 'leases', 'deadlines', 'pending', 'pdata', 'dead', 'parts' }
local function state_sizes()
  return { redis.call('HLEN', LEASES), redis.call('ZCARD', DEADLINES), redis.call('ZCARD', PENDING),
    redis.call('HLEN', PDATA), redis.call('LLEN', DEAD), redis.call('HLEN', PARTS) }
end
local function recorded_sizes()
  local fields = {}
  for i, part in ipairs(STATE_PARTS) do fields[i] = 'n:' .. part end
  return redis.call('HMGET', META, unpack(fields))
end
-- The parts not as recorded ('pending, pdata'), or nil. No record: 'meta' when META lost its run state while another
-- part is there; nil for a job with no state or from before records.
local function parts_lost()
  local kept = recorded_sizes()
  local sizes, lost = state_sizes(), {}
  if not kept[1] then
    if redis.call('HEXISTS', META, 'state') == 1 then return nil end
    for _, size in ipairs(sizes) do
      if size > 0 then return 'meta' end
    end
    return nil
  end
  for i, part in ipairs(STATE_PARTS) do
    if sizes[i] ~= tonumber(kept[i]) then lost[#lost + 1] = part end
  end
  if #lost == 0 then return nil end
  return table.concat(lost, ', ')
end
-- Marks the job's state as lost in part: its active run fails; a run without \`from\` is refused until then. With META
-- lost, the run that was going on (its id gone too) fails as well: its hosts may still be there.
local function mark_lost(parts)
  local was = redis.call('HGET', META, 'lost')
  redis.call('HSET', META, 'lost', was and was ~= parts and (was .. ', ' .. parts) or parts)
  local state = redis.call('HGET', META, 'state')
  if state == 'running' or not state then
    redis.call('HSET', META, 'state', 'failed', 'error', 'state lost: ' .. parts, 'endedAt', now_ms())
  end
end
-- Run first by every script.
local function check_state()
  local parts = parts_lost()
  if parts then mark_lost(parts) end
end
-- Run last by every script: the sizes it leaves are the record (written only when one changed; never for a job
-- with no state at all, so asking about an unknown job creates nothing).
local function record_state()
  local sizes, kept, fields, any = state_sizes(), recorded_sizes(), {}, false
  for i, part in ipairs(STATE_PARTS) do
    if sizes[i] > 0 then any = true end
    if tostring(sizes[i]) ~= kept[i] then
      fields[#fields + 1], fields[#fields + 2] = 'n:' .. part, sizes[i]
    end
  end
  if #fields > 0 and (any or redis.call('EXISTS', META) == 1) then redis.call('HSET', META, unpack(fields)) end
end
-- After \`from\`: what is left is the job's state again. A lease without its deadline expires now (handed out again at
-- attempt + 1), a retry without its due time is due now; a deadline or due time without its range is dropped.
local function repair_state(now)
  local function pair(hash, zset, score)
    local fields, members = redis.call('HKEYS', hash), redis.call('ZRANGE', zset, 0, -1)
    local has, ranged = {}, {}
    for _, f in ipairs(fields) do has[f] = true end
    for _, f in ipairs(fields) do
      local id = string.match(f, '^(.*):m$')
      if id and has[id .. ':r'] then ranged[id] = true
      elseif id then redis.call('HDEL', hash, f) end
    end
    for _, f in ipairs(fields) do
      local id = string.match(f, '^(.*):r$')
      if id and not has[id .. ':m'] then redis.call('HDEL', hash, f) end
    end
    local timed = {}
    for _, id in ipairs(members) do
      timed[id] = true
      if not ranged[id] then redis.call('ZREM', zset, id) end
    end
    for id in pairs(ranged) do
      if not timed[id] then redis.call('ZADD', zset, score, id) end
    end
  end
  pair(LEASES, DEADLINES, now)
  pair(PDATA, PENDING, now)
  redis.call('HDEL', META, 'lost')
end
`;
