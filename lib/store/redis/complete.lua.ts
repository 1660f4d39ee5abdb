import { jobScript } from './job-script';

/**
 * complete: counts the owner's ranges as done, in one step.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, then tokens.
 * - Reply: per token, 1 when counted, 0 when the lease was lost, is past its deadline (it stays, to expire and go
 *   out again at attempt + 1), or the token came twice.
 */
export const COMPLETE: string = jobScript(`
local rid, now, counted, ids, done, fields, members = run_id(), now_ms(), {}, 0, 0, {}, {}
local tokens, mine = owned(ARGV[1], 2)
for k, token in ipairs(tokens) do
  local m = mine[token]
  mine[token] = nil
  if m and tonumber(redis.call('ZSCORE', DEADLINES, token) or '0') <= now then m = nil end
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
`);
