import { jobScript } from './job-script';

/**
 * heartbeat: renews the owner's leases and the partitions it loads, and marks it as taking part in the active run.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, [2] leaseMs, then tokens (none: only the mark).
 * - Reply: the tokens that are not the owner's any more.
 */
export const HEARTBEAT: string = jobScript(`
local now = now_ms()
local deadline, lost, renewed = now + tonumber(ARGV[2]), {}, {}
if redis.call('HGET', META, 'state') == 'running' then present(ARGV[1], deadline, now) end
-- A host loading a partition slowly keeps it: others take another one meanwhile.
for _, i in ipairs(loaded_by(ARGV[1])) do redis.call('HSET', PARTS, i .. ':until', tok(deadline)) end
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
`);
