import { jobScript } from './job-script';

/**
 * recordRun: keeps the record of an ended run first and the job's newest `keep` records (in HIST and HISTREC).
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] status, [3] the record (JSON, kept as sent), [4] keep.
 * - Reply: 1 when kept, 0 when the kept record stays: it says `completed` or `cancelled` (the run's end), or
 *   this one says `stopped` and the kept one does not (a host that stopped while the run ended elsewhere).
 * A record of the same run replaces the kept one; a later write always sorts newer (store time, else the newest + 1).
 */
export const RECORD_RUN: string = jobScript(`
local kept = redis.call('HGET', HISTREC, ARGV[1])
-- Decoded only to read its status; the kept text is never re-encoded.
if kept then
  local was = cjson.decode(kept).status
  if was == 'completed' or was == 'cancelled' or (ARGV[2] == 'stopped' and was ~= 'stopped') then return 0 end
end
local score, newest = now_ms(), redis.call('ZREVRANGE', HIST, 0, 0, 'WITHSCORES')[2]
if newest and tonumber(newest) >= score then score = tonumber(newest) + 1 end
redis.call('ZADD', HIST, tok(score), ARGV[1])
redis.call('HSET', HISTREC, ARGV[1], ARGV[3])
local old = redis.call('ZRANGE', HIST, 0, -tonumber(ARGV[4]) - 1)
chunked(old, function(...)
  redis.call('ZREM', HIST, ...)
  redis.call('HDEL', HISTREC, ...)
end)
return 1
`);
