import { COMMON } from './common.lua';

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
`;
