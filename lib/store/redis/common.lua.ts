import { INTEGRITY } from './integrity.lua';
import { JOB_KEYS } from './keys';
import { PARTITIONS } from './partitions.lua';
import { PRESENCE } from './presence.lua';
import { REPLIES } from './replies.lua';

/**
 * Lua shared by every script. KEYS are the job's keys, in the order of
 * JOB_KEYS (one hash tag, so Redis Cluster keeps a job on one slot), bound
 * here to names: META hash (run, cursor, counters, token), LEASES hash
 * (<token>:m meta, <token>:r range), DEADLINES zset (token by deadline),
 * PENDING zset (id by due time), PDATA hash (<id>:m, <id>:r), DEAD list,
 * HOSTS zset (owner by the time until which it takes part), REPLIES hash
 * (<owner>:<slot>: a claim's or commit's request and what it leased), PARTS
 * hash (the job's partitions, each with its cursor and loader), HIST zset
 * (ended runs' ids by when their record was written) and HISTREC hash (runId:
 * the record's JSON); those two stay across reset.
 * Hosts taking part, remembered answers, partitions and the record of what
 * the state should hold (integrity) have their own include files.
 * Ranges and cursors stay opaque JSON strings: Lua never decodes them, so no
 * id loses digits in cjson.
 */
export const COMMON: string = `
local ${JOB_KEYS.map((k) => k.toUpperCase()).join(', ')} = ${JOB_KEYS.map((_, i) => `KEYS[${i + 1}]`).join(', ')}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function run_id()
  return redis.call('HGET', META, 'runId') or ''
end
-- A token as text: tokens pass 10^14, which Lua would print as 1.8e+15.
local function tok(token)
  return string.format('%d', token)
end
-- The first of n new fencing tokens. Never below Redis time in ms x 1000: a replica promoted after a failover,
-- whose counter lags, still issues tokens above every one issued before (unless it issued 1000 a ms for long).
-- The floor is the next millisecond's, so a counter lost in the very millisecond it issued a token still goes above it.
local function next_tokens(n)
  local floor = (now_ms() + 1) * 1000
  if tonumber(redis.call('HGET', META, 'token') or '0') < floor then redis.call('HSET', META, 'token', tok(floor)) end
  return redis.call('HINCRBY', META, 'token', n) - n + 1
end
local function new_lease(range, n, attempt, owner, lease_ms, now)
  local token = next_tokens(1)
  local rid = run_id()
  redis.call('HSET', LEASES, tok(token) .. ':r', range, tok(token) .. ':m', cjson.encode({ o = owner, a = attempt, r = rid, n = n }))
  local deadline = now + lease_ms
  redis.call('ZADD', DEADLINES, deadline, tok(token))
  return { token, attempt, rid, range, deadline }
end
-- Removes entry \`id\` (its meta and range in \`hash\`, its time in \`zset\`) and returns its meta and range.
-- Nil when its meta is missing (a part of the state lost: integrity.lua).
local function pop(hash, zset, id)
  local raw = redis.call('HGET', hash, id .. ':m')
  if not raw then return nil end
  local m = cjson.decode(raw)
  local range = redis.call('HGET', hash, id .. ':r')
  redis.call('HDEL', hash, id .. ':m', id .. ':r')
  redis.call('ZREM', zset, id)
  return m, range
end
-- A lease's meta: owner, attempt, run id and number of ids.
-- Removes the owner's lease and returns its meta and range, or nil when it is not theirs any more.
local function take(owner, token)
  local m = redis.call('HGET', LEASES, token .. ':m')
  if not m or cjson.decode(m).o ~= owner then return nil end
  return pop(LEASES, DEADLINES, token)
end
-- Calls fn with the values of list, at most 1000 at a time (Lua's unpack has a limit; an even step keeps pairs together).
local function chunked(list, fn)
  for i = 1, #list, 1000 do fn(unpack(list, i, math.min(i + 999, #list))) end
end
-- ARGV from \`from\` on are tokens: returns them, and the metas of those the owner holds, by token (one HMGET).
local function owned(owner, from)
  local tokens, fields, mine = {}, {}, {}
  for i = from, #ARGV do
    tokens[#tokens + 1] = ARGV[i]
    fields[#fields + 1] = ARGV[i] .. ':m'
  end
  if #fields == 0 then return tokens, mine end
  local metas = {}
  chunked(fields, function(...)
    local got = redis.call('HMGET', LEASES, ...)
    for j = 1, #got do metas[#metas + 1] = got[j] end
  end)
  for k = 1, #tokens do
    if metas[k] then
      local m = cjson.decode(metas[k])
      if m.o == owner then mine[tokens[k]] = m end
    end
  end
  return tokens, mine
end
local function add_pending(id, range, n, attempt, reason, rid, due)
  redis.call('ZADD', PENDING, due, id)
  redis.call('HSET', PDATA, id .. ':r', range, id .. ':m', cjson.encode({ a = attempt, why = reason, r = rid, n = n }))
end
${PRESENCE}${REPLIES}${PARTITIONS}${INTEGRITY}`;
