import { COMMON } from './common.lua';
import { DECLARED } from './declared.lua';

/**
 * readHistory: the records of the job's newest ended runs, newest first.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] declaredBy ('' for none), [2] how many (at least 1).
 * - Reply: { 'ok', the records as stored (JSON) }; { 'declared', declaredBy } when the job is another app's.
 */
export const READ_HISTORY: string = `${COMMON}${DECLARED}
local refused = other_app(ARGV[1])
if refused then return refused end
local run_ids = redis.call('ZREVRANGE', HIST, 0, tonumber(ARGV[2]) - 1)
local records = {}
chunked(run_ids, function(...)
  local got = redis.call('HMGET', HISTREC, ...)
  for i = 1, #got do records[#records + 1] = got[i] end
end)
return { 'ok', records }
`;
