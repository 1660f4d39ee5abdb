import { COMMON } from './common.lua'

/**
 * heartbeat: renews the owner's leases and marks it as taking part in the active run.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, [2] leaseMs, then tokens (none: only the mark).
 * - Reply: the tokens that are not the owner's any more.
 */
export const HEARTBEAT: string = `${COMMON}
local now = now_ms()
local deadline, lost, renewed = now + tonumber(ARGV[2]), {}, {}
if redis.call('HGET', META, 'state') == 'running' then present(ARGV[1], deadline, now) end
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

/**
 * complete: counts the owner's ranges as done, in one step.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, then tokens.
 * - Reply: per token, 1 when counted, 0 when the lease was lost (or the token came twice).
 */
export const COMPLETE: string = `${COMMON}
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

/**
 * fail: schedules a retry of the owner's range (attempt + 1) or sends it to the dead letters.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, [2] token, [3] dead ('1'/'0'), [4] retryInMs, [5] error (JSON).
 * - Reply: 'retry', 'dead', or 'stale' when the lease was not the owner's any more.
 */
export const FAIL: string = `${COMMON}
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

/**
 * release: gives the owner's leases back, due now, at the same attempt.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, then tokens.
 * - Reply: 1.
 */
export const RELEASE: string = `${COMMON}
local now = now_ms()
for i = 2, #ARGV do
  local m, range = take(ARGV[1], ARGV[i])
  if m then add_pending(ARGV[i], range, m.n, m.a, 'released', m.r, now) end
end
return 1
`

/**
 * requeueDead: hands one dead letter out again (attempt 1), once even if called twice.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] the dead letter (the exact list entry), [2] its range (JSON), [3] its number of ids.
 * - Reply: 1 when requeued, 0 when it was not in the list any more.
 */
export const REQUEUE_DEAD: string = `${COMMON}
if redis.call('LREM', DEAD, 1, ARGV[1]) == 0 then return 0 end
add_pending('d' .. redis.call('HINCRBY', META, 'requeued', 1), ARGV[2], tonumber(ARGV[3]), 1, 'retry', run_id(), now_ms())
return 1
`

/**
 * leave: the owner stopped taking part in the run (its leases were given back first).
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner.
 * - Reply: 1.
 */
export const LEAVE: string = `${COMMON}
redis.call('ZREM', HOSTS, ARGV[1])
local fields = {}
for i = 0, 63 do fields[#fields + 1] = ARGV[1] .. ':' .. i end
redis.call('HDEL', REPLIES, unpack(fields))
return 1
`
