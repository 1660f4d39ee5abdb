import { jobScript } from './job-script';

/**
 * hold: puts the running run `runId` on hold for every host (see `JobStore.hold`).
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] reason, [3] indicator, [4] holdMs (a whole number, >= 0).
 * - Reply: 1 when the run is on hold, 0 when `runId` is not the running run.
 * A hold in place (holdUntil after now) takes the new reason and indicator and
 * the later end, keeping its start; otherwise the last hold's span goes into
 * heldMs first and a new one starts now. All in META, store time.
 */
export const HOLD: string = jobScript(`
if run_id() ~= ARGV[1] or redis.call('HGET', META, 'state') ~= 'running' then return 0 end
local now = now_ms()
local ends = now + tonumber(ARGV[4])
local since, was = tonumber(redis.call('HGET', META, 'holdSince')), tonumber(redis.call('HGET', META, 'holdUntil'))
-- No other host's turn until a hold's length after it ends: the host that put it asks again as it ends.
if was and was > now then
  local till = math.max(was, ends)
  redis.call('HSET', META, 'holdReason', ARGV[2], 'holdIndicator', ARGV[3], 'holdUntil', tok(till), 'healthAt', tok(till + tonumber(ARGV[4])))
  return 1
end
if since and was then redis.call('HINCRBY', META, 'heldMs', was - since) end
redis.call('HSET', META, 'holdReason', ARGV[2], 'holdIndicator', ARGV[3], 'holdSince', tok(now), 'holdUntil', tok(ends), 'healthAt', tok(ends + tonumber(ARGV[4])))
return 1
`);
