import { COMMON } from './common.lua';
import { DECLARED } from './declared.lua';

/**
 * leaseOwners: one HSCAN page of the leases' small `<token>:m` fields (never the ranges' ids), for leases per host.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] declaredBy ('' for none), [2] HSCAN cursor.
 * - Reply: { 'ok', next cursor, flat field and value list }; { 'declared', declaredBy } when the job is another app's.
 */
export const LEASE_OWNERS: string = `${COMMON}${DECLARED}
local refused = other_app(ARGV[1])
if refused then return refused end
local page = redis.call('HSCAN', LEASES, ARGV[2], 'MATCH', '*:m', 'COUNT', 1000)
return { 'ok', page[1], page[2] }
`;
