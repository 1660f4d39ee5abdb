import { COMMON } from './common.lua';

/**
 * reset: cursor back to the start (partitions forgotten), nothing leased or pending, the job idle (its last run's counters gone).
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: none.
 * - Reply: { 'ok' }, or { 'busy', runId } while the run is active (a live lease, or a host taking part).
 */
export const RESET: string = `${COMMON}
local now = now_ms()
if redis.call('HGET', META, 'state') == 'running' and active(now) then return { 'busy', run_id() } end
redis.call('HDEL', META, 'total', 'error', 'startedAt', 'endedAt')
redis.call('HSET', META, 'state', 'idle', 'control', 'run', 'cursor', 'null', 'exhausted', '0',
  'ids', 0, 'completed', 0, 'retried', 0, 'dead', 0, 'workersStarted', 0, 'workersRestarted', 0)
redis.call('DEL', LEASES, DEADLINES, PENDING, PDATA, HOSTS, REPLIES, PARTS)
return { 'ok' }
`;
