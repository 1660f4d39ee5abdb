import { jobScript } from './job-script';

/**
 * fail: schedules a retry of the owner's range (attempt + 1) or sends it to the dead letters.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, [2] token, [3] dead ('1'/'0'), [4] retryInMs, [5] error (JSON),
 *   [6] the range of the ids that failed (JSON; '' when the whole range failed), [7] its number of ids,
 *   [8] to [11] when it is split for its retry: its first half (JSON; '' when not split), its number of ids, its
 *   second half, its number of ids (the halves of the range of ARGV[6] with one, else of the leased range).
 * - Reply: 'retry', 'dead', or 'stale' when the lease was not the owner's any more (or, for a partial failure, is
 *   past its deadline: it stays, to expire and go out again whole at attempt + 1).
 */
export const FAIL: string = jobScript(`
local now = now_ms()
-- A partial failure counts its done part as complete counts a range: past the deadline, nothing (it expires).
if ARGV[6] ~= '' and tonumber(redis.call('ZSCORE', DEADLINES, ARGV[2]) or '0') <= now then return 'stale' end
local m, range = take(ARGV[1], ARGV[2])
if not m then return 'stale' end
local current, n = m.r == run_id(), m.n
-- Part of the range failed: the rest is a range that ended done, and only the failed ids go on, as a range of their
-- own (the token fences the range sent).
if ARGV[6] ~= '' then
  range, n = ARGV[6], tonumber(ARGV[7])
  if current and m.n > n then
    redis.call('HINCRBY', META, 'ids', m.n - n)
    redis.call('HINCRBY', META, 'completed', 1)
  end
end
if ARGV[3] == '1' then
  redis.call('RPUSH', DEAD, '{"runId":' .. cjson.encode(m.r) .. ',"range":' .. range .. ',"attempts":' .. m.a ..
    ',"error":' .. ARGV[5] .. ',"at":' .. now .. '}')
  if current then redis.call('HINCRBY', META, 'dead', 1) end
  return 'dead'
end
local due = now + tonumber(ARGV[4])
if ARGV[8] ~= '' then
  -- Split: its halves go on in its place, as one retry; at the same due time the first half sorts first.
  add_pending(ARGV[2], ARGV[8], tonumber(ARGV[9]), m.a + 1, 'retry', m.r, due)
  add_pending(ARGV[2] .. 's', ARGV[10], tonumber(ARGV[11]), m.a + 1, 'retry', m.r, due)
else
  add_pending(ARGV[2], range, n, m.a + 1, 'retry', m.r, due)
end
if current then redis.call('HINCRBY', META, 'retried', 1) end
return 'retry'
`);
