import { jobScript } from './job-script';

/**
 * healthTurn: the turn to ask the health indicators, for one caller per interval across hosts.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] intervalMs (a whole number, >= 0).
 * - Reply: 1 for the turn (the next one is intervalMs from now, store time), 0 when another caller
 *   had it less than its interval ago or `runId` is not the running run.
 */
export const HEALTH_TURN: string = jobScript(`
if run_id() ~= ARGV[1] or redis.call('HGET', META, 'state') ~= 'running' then return 0 end
local now = now_ms()
if tonumber(redis.call('HGET', META, 'healthAt') or '0') > now then return 0 end
redis.call('HSET', META, 'healthAt', tok(now + tonumber(ARGV[2])))
return 1
`);
