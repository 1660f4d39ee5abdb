import { COMMON } from './common.lua';
import { DECLARED } from './declared.lua';

/**
 * readDead: a page of the job's dead letters, oldest first.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] declaredBy ('' for none), [2] first index, [3] last index (-1: to the end).
 * - Reply: { 'ok', the entries as stored (JSON) }; { 'declared', declaredBy } when the job is another app's.
 */
export const READ_DEAD: string = `${COMMON}${DECLARED}
local refused = other_app(ARGV[1])
if refused then return refused end
return { 'ok', redis.call('LRANGE', DEAD, ARGV[2], ARGV[3]) }
`;
