import { jobScript } from './job-script';

/**
 * requeueDead: hands one dead letter out again (attempt 1), once even if called twice.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] the dead letter (the exact list entry), [2] its range (JSON), [3] its number of ids,
 *   [4] declaredBy ('' for none).
 * - Reply: 1 when requeued, 0 when it was not in the list any more; { 'declared', declaredBy } when the job is
 *   another app's.
 */
export const REQUEUE_DEAD: string = jobScript(`
local refused = other_app(ARGV[4])
if refused then return refused end
if redis.call('LREM', DEAD, 1, ARGV[1]) == 0 then return 0 end
add_pending('d' .. redis.call('HINCRBY', META, 'requeued', 1), ARGV[2], tonumber(ARGV[3]), 1, 'retry', run_id(), now_ms())
return 1
`);
