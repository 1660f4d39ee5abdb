import { jobScript } from './job-script';

/**
 * leave: the owner stopped taking part in the run (its leases were given back first); the partitions it loaded are free.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner.
 * - Reply: 1.
 */
export const LEAVE: string = jobScript(`
redis.call('ZREM', HOSTS, ARGV[1])
for _, i in ipairs(loaded_by(ARGV[1])) do redis.call('HDEL', PARTS, i .. ':owner', i .. ':until') end
local fields = {}
for i = 0, REPLY_SLOTS - 1 do fields[#fields + 1] = ARGV[1] .. ':' .. i end
chunked(fields, function(...) redis.call('HDEL', REPLIES, ...) end)
return 1
`);
