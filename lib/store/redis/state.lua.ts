import { jobScript } from './job-script';

/**
 * state: what the job's run looks like.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] declaredBy ('' for none).
 * - Reply: { the meta hash as a flat list, leases, pending retries, dead letters, store time (ms),
 *   the partitions hash as a flat list (empty when the job has none), 1 when the run is active (a live lease or a host
 *   taking part) else 0 }; { 'declared', declaredBy } when the job is another app's.
 */
export const STATE: string = jobScript(`
local refused = other_app(ARGV[1])
if refused then return refused end
local now = now_ms()
return { redis.call('HGETALL', META), redis.call('ZCARD', DEADLINES), redis.call('ZCARD', PENDING), redis.call('LLEN', DEAD), now,
  redis.call('HGETALL', PARTS), active(now) and 1 or 0 }
`);
