import { COMMON } from './common.lua'

/** ARGV: owner, leaseMs, tokens... Renews the owner's leases; returns the tokens that are not theirs any more. */
export const HEARTBEAT = `${COMMON}
local deadline, lost, renewed = now_ms() + tonumber(ARGV[2]), {}, {}
local tokens, mine = owned(ARGV[1], 3)
for _, token in ipairs(tokens) do
  if mine[token] then
    renewed[#renewed + 1], renewed[#renewed + 2] = deadline, token
  else
    lost[#lost + 1] = token
  end
end
chunked(renewed, function(...) redis.call('ZADD', DEADLINES, 'XX', ...) end)
return lost
`

/** ARGV: owner, tokens... For each: 1 when counted, 0 when the lease was lost (or the token came twice). */
export const COMPLETE = `${COMMON}
local rid, counted, ids, done, fields, members = run_id(), {}, 0, 0, {}, {}
local tokens, mine = owned(ARGV[1], 2)
for k, token in ipairs(tokens) do
  local m = mine[token]
  mine[token] = nil
  counted[k] = m and 1 or 0
  if m then
    fields[#fields + 1], fields[#fields + 2] = token .. ':m', token .. ':r'
    members[#members + 1] = token
    if m.r == rid then
      ids = ids + m.n
      done = done + 1
    end
  end
end
chunked(fields, function(...) redis.call('HDEL', LEASES, ...) end)
chunked(members, function(...) redis.call('ZREM', DEADLINES, ...) end)
if done > 0 then
  redis.call('HINCRBY', META, 'ids', ids)
  redis.call('HINCRBY', META, 'completed', done)
end
return counted
`

/** ARGV: owner, token, dead ('1'/'0'), retryInMs, error (JSON). Returns 'retry', 'dead' or 'stale'. */
export const FAIL = `${COMMON}
local m, range = take(ARGV[1], ARGV[2])
if not m then return 'stale' end
local now, current = now_ms(), m.r == run_id()
if ARGV[3] == '1' then
  redis.call('RPUSH', DEAD, '{"runId":' .. cjson.encode(m.r) .. ',"range":' .. range .. ',"attempts":' .. m.a ..
    ',"error":' .. ARGV[5] .. ',"at":' .. now .. '}')
  if current then redis.call('HINCRBY', META, 'dead', 1) end
  return 'dead'
end
add_pending(ARGV[2], range, m.n, m.a + 1, 'retry', m.r, now + tonumber(ARGV[4]))
if current then redis.call('HINCRBY', META, 'retried', 1) end
return 'retry'
`

/** ARGV: owner, tokens... Gives the owner's leases back, due now, at the same attempt. */
export const RELEASE = `${COMMON}
local now = now_ms()
for i = 2, #ARGV do
  local m, range = take(ARGV[1], ARGV[i])
  if m then add_pending(ARGV[i], range, m.n, m.a, 'released', m.r, now) end
end
return 1
`

/** ARGV: dead letter (the exact list entry), its range (JSON), its number of ids. Requeues it once, even if called twice. */
export const REQUEUE_DEAD = `${COMMON}
if redis.call('LREM', DEAD, 1, ARGV[1]) == 0 then return 0 end
add_pending('d' .. redis.call('HINCRBY', META, 'requeued', 1), ARGV[2], tonumber(ARGV[3]), 1, 'retry', run_id(), now_ms())
return 1
`
