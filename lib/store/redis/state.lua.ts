import { COMMON } from './common.lua';

/**
 * state: what the job's run looks like.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: none.
 * - Reply: { the meta hash as a flat list, leases, pending retries, dead letters, store time (ms),
 *   the partitions hash as a flat list (empty when the job has none) }.
 */
export const STATE: string = `${COMMON}
return { redis.call('HGETALL', META), redis.call('ZCARD', DEADLINES), redis.call('ZCARD', PENDING), redis.call('LLEN', DEAD), now_ms(),
  redis.call('HGETALL', PARTS) }
`;
