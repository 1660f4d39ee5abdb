import { jobScript } from './job-script';

/**
 * reset: cursor back to the start (partitions forgotten), nothing leased or pending, the job idle (its last run's counters gone).
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] declaredBy ('' for none).
 * - Reply: { 'ok' }, or { 'busy', runId } while the run is active (a live lease, or a host taking part), or
 *   failed for state lost while its hosts have not left; { 'declared', declaredBy } when the job is another app's.
 * The declaration, dead letters, history and token counter stay.
 */
export const RESET: string = jobScript(`
local refused = other_app(ARGV[1])
if refused then return refused end
local now = now_ms()
-- A run failed for state lost (perhaps by the check before this script) counts as active too until its hosts have
-- left: one that had not seen the failure yet would find the job idle and take that for the run's end.
local state = redis.call('HGET', META, 'state')
local winding_down = state == 'failed' and redis.call('HGET', META, 'lost')
if (state == 'running' or winding_down) and active(now) then return { 'busy', run_id() } end
redis.call('HDEL', META, 'total', 'error', 'startedAt', 'endedAt', 'lost')
redis.call('HSET', META, 'state', 'idle', 'control', 'run', 'cursor', 'null', 'exhausted', '0',
  'ids', 0, 'completed', 0, 'retried', 0, 'dead', 0, 'workersStarted', 0, 'workersRestarted', 0)
redis.call('DEL', LEASES, DEADLINES, PENDING, PDATA, HOSTS, REPLIES, PARTS)
return { 'ok' }
`);
