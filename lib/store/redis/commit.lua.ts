import { jobScript } from './job-script';

/**
 * commit: compare-and-set of the cursor and the leases of the loaded ranges,
 * with the next fencing tokens, in one step; no ranges: loading is exhausted.
 * With partitions, all of that is the partition's cursor, and the partition
 * stays the owner's to load until leaseMs from now; a commit to a partition
 * another host loads now (it took it over) is a conflict.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, [2] expected cursor (JSON), [3] leaseMs, [4] new cursor
 *   (JSON), [5] request ('' for none), [6] partition ('' for none), then per
 *   range its JSON and its number of ids.
 * - Reply: { 'leased', due (1: claim before loading again), runId, deadline,
 *   token per range... } (the tokens, not the ranges: the host has those);
 *   { 'exhausted' }; { 'conflict', cursor } when the cursor is not the
 *   expected one, no run is active, or the run is on hold (ranges given); { 'partitions', count ('' for none) }
 *   when the partition does not match how the job is split (nothing changed).
 *   The same request again gets the same 'leased' reply.
 */
export const COMMIT: string = jobScript(`
local again = replayed(ARGV[1], ARGV[5])
if again then
  local first, n = tonumber(again[2]), tonumber(again[3])
  local out = { 'leased', tonumber(again[4]), run_id(), tonumber(again[5]) }
  for k = 0, n - 1 do out[k + 5] = first + k end
  return out
end
-- The cursor this commit moves: the job's, or its partition's, which must be one the job has (hosts of another
-- version of the app may split it otherwise).
local parts, part = parts_n(), nil
if ARGV[6] ~= '' then
  local p = tonumber(ARGV[6])
  if not parts or not p or p < 0 or p >= parts or p ~= math.floor(p) then return { 'partitions', parts or '' } end
  part = tok(p)
elseif parts then
  return { 'partitions', parts }
end
local cursor
if part then
  cursor = redis.call('HGET', PARTS, part .. ':cursor')
  -- Another host loads it now (it took it over): this load is thrown away, as when the cursor moved.
  local by, till = unpack(redis.call('HMGET', PARTS, part .. ':owner', part .. ':until'))
  if by and by ~= ARGV[1] and tonumber(till or 0) > now_ms() then return { 'conflict', cursor } end
else
  cursor = redis.call('HGET', META, 'cursor') or 'null'
end
if redis.call('HGET', META, 'state') ~= 'running' or cursor ~= ARGV[2] then return { 'conflict', cursor } end
if #ARGV == 6 then
  if part then
    -- Nothing left in it: no one loads it any more.
    redis.call('HSET', PARTS, part .. ':exhausted', '1')
    redis.call('HDEL', PARTS, part .. ':owner', part .. ':until')
  else
    redis.call('HSET', META, 'exhausted', '1')
  end
  return { 'exhausted' }
end
local now, lease_ms = now_ms(), tonumber(ARGV[3])
-- On hold (hold.lua): loaded ranges are not leased; the host claims, which waits until the hold ends.
if tonumber(redis.call('HGET', META, 'holdUntil') or '0') > now then return { 'conflict', cursor } end
if part then
  local ids = 0
  for i = 8, #ARGV, 2 do ids = ids + tonumber(ARGV[i]) end
  redis.call('HINCRBY', PARTS, part .. ':ids', ids)
  redis.call('HSET', PARTS, part .. ':cursor', ARGV[4], part .. ':owner', ARGV[1], part .. ':until', tok(now + lease_ms))
else
  redis.call('HSET', META, 'cursor', ARGV[4])
end
-- Tells the host to claim before its next load when older work is waiting.
local due = (#redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, 1) > 0
  or #redis.call('ZRANGEBYSCORE', PENDING, '-inf', now, 'LIMIT', 0, 1) > 0) and 1 or 0
-- All leases in one HINCRBY, one HSET and one ZADD.
local rid, deadline, n = run_id(), now + lease_ms, (#ARGV - 6) / 2
local first = next_tokens(n)
local meta = '{"o":' .. cjson.encode(ARGV[1]) .. ',"a":1,"r":' .. cjson.encode(rid) .. ',"n":'
local out, fields, scores = { 'leased', due, rid, deadline }, {}, {}
for k = 0, n - 1 do
  local token, i = first + k, 7 + 2 * k
  fields[4 * k + 1], fields[4 * k + 2] = tok(token) .. ':r', ARGV[i]
  fields[4 * k + 3], fields[4 * k + 4] = tok(token) .. ':m', meta .. tonumber(ARGV[i + 1]) .. '}'
  scores[2 * k + 1], scores[2 * k + 2] = deadline, tok(token)
  out[k + 5] = token
end
chunked(fields, function(...) redis.call('HSET', LEASES, ...) end)
chunked(scores, function(...) redis.call('ZADD', DEADLINES, ...) end)
remember(ARGV[1], ARGV[5], tok(first), n, due, deadline)
return out
`);
