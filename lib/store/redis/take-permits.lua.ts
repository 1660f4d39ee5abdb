import { jobScript } from './job-script';

/**
 * takePermits: hand-outs of the current second (store time), shared by every host.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] wanted, [2] perSecond.
 * - Reply: { granted, waitMs (until the next second when none was granted) }.
 */
export const TAKE_PERMITS: string = jobScript(`
local now = now_ms()
local second = math.floor(now / 1000)
local used = 0
if tonumber(redis.call('HGET', META, 'permitSecond') or '-1') == second then used = tonumber(redis.call('HGET', META, 'permitUsed')) end
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
redis.call('HSET', META, 'permitSecond', second, 'permitUsed', used + granted)
return { granted, granted > 0 and 0 or (1000 - now % 1000) }
`);
