import { jobScript } from './job-script';

/**
 * startRun: starts a run of the job, or joins the active one.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] hasFrom ('1'/'0'), [3] from (JSON), [4] declaredBy ('' for none),
 *   [5] n, then n pairs of a start field ('params', 'startedBy', 'startedOn') and its value (those given),
 *   then the cursor the partitions were planned from (JSON; '' when the job has no partitions),
 *   then per partition its after and its upTo (JSON; none when the job has no partitions).
 * - Reply: { runId, joined (1/0), the joined run's params (nil for none) }; { 'busy', runId } when `from` is given
 *   while the run is active; { 'declared', declaredBy } when the job is
 *   another app's and `from` is not given; { 'lost', parts, runId } when part of the job's state was lost (see
 *   integrity.lua) and `from` is not given (`from` takes what is left as the job's state again); { 'replan', cursor }
 *   when a new run would store partitions planned from a cursor the job no longer has (or none were given): nothing
 *   changed.
 * A new run stores the given partitions when the job has none stored, or with
 * `from` (which replaces the stored ones, none when none are given); else the
 * stored ones are kept, their cursors too, and go over again (new rows only).
 * A new run keeps the given start fields only (params stay the text sent),
 * and the run it replaces as `previous*` when that one had ended; it starts
 * with no hold, no time held and its health turn free.
 */
export const START_RUN: string = jobScript(`
local now = now_ms()
local declared = redis.call('HGET', META, 'declaredBy')
if ARGV[4] ~= '' and declared and declared ~= ARGV[4] and ARGV[2] == '0' then return { 'declared', declared } end
-- Part of the job's state was lost: only \`from\` (the user says where to go on from) starts it again.
local lost = redis.call('HGET', META, 'lost')
if lost and ARGV[2] == '0' then return { 'lost', lost, run_id() } end
if redis.call('HGET', META, 'state') == 'running' then
  if ARGV[2] == '0' then return { run_id(), 1, redis.call('HGET', META, 'params') } end
  if active(now) then return { 'busy', run_id() } end
end
-- A run failed for state lost (perhaps by the check before this script) stays active until its hosts left (their
-- leases are suspect: part of the state is gone): \`from\` now would take ranges away before any of them saw the loss.
if lost and redis.call('HGET', META, 'state') == 'failed' and hosts_present(now) then return { 'busy', run_id() } end
local planned_at = 6 + 2 * tonumber(ARGV[5])
local first_part = planned_at + 1
-- A plan clipped at a cursor that moved since (a reset while it was computed) would skip the ids in between.
if ARGV[2] == '0' and ARGV[planned_at] ~= '' and not parts_n() then
  local cursor = redis.call('HGET', META, 'cursor') or 'null'
  if #ARGV < first_part or cursor ~= ARGV[planned_at] then return { 'replan', cursor } end
end
if ARGV[4] ~= '' then redis.call('HSET', META, 'declaredBy', ARGV[4]) end
redis.call('HDEL', META, 'params', 'startedBy', 'startedOn')
if planned_at > 6 then redis.call('HSET', META, unpack(ARGV, 6, planned_at - 1)) end
-- The given partitions, each cursor at its start: the bounds stay the JSON the host sent, so a cursor compares as sent.
local function fresh_parts()
  local count = (#ARGV - first_part + 1) / 2
  if count == 0 then return end
  local fields = { 'n', count }
  for k = 0, count - 1 do
    local after, up_to = ARGV[first_part + 2 * k], ARGV[first_part + 1 + 2 * k]
    for _, v in ipairs({ k .. ':after', after, k .. ':upTo', up_to, k .. ':cursor', after, k .. ':exhausted', '0', k .. ':ids', 0 }) do
      fields[#fields + 1] = v
    end
  end
  chunked(fields, function(...) redis.call('HSET', PARTS, ...) end)
end
local parts = parts_n()
if ARGV[2] == '1' then
  repair_state(now)
  redis.call('HSET', META, 'cursor', ARGV[3])
  if ARGV[3] == 'null' then redis.call('DEL', PENDING, PDATA) end
  redis.call('DEL', PARTS)
  fresh_parts()
elseif parts then
  -- Kept from the last run: every partition is loaded again from its cursor, by no one yet.
  for i = 0, parts - 1 do
    redis.call('HSET', PARTS, i .. ':exhausted', '0', i .. ':ids', 0)
    redis.call('HDEL', PARTS, i .. ':owner', i .. ':until')
  end
else
  fresh_parts()
end
redis.call('DEL', REPLIES)
-- The run this one replaces, as it ended: a host that sees a cancel late can tell it from a run whose state was lost.
local was = redis.call('HGET', META, 'state')
if was == 'completed' or was == 'failed' or was == 'stopped' then
  redis.call('HSET', META, 'previousRunId', run_id(), 'previousState', was, 'previousError', redis.call('HGET', META, 'error') or '')
else
  redis.call('HDEL', META, 'previousRunId', 'previousState', 'previousError')
end
redis.call('HDEL', META, 'total', 'holdReason', 'holdIndicator', 'holdSince', 'holdUntil', 'heldMs', 'healthAt')
redis.call('HSET', META, 'runId', ARGV[1], 'state', 'running', 'control', 'run', 'error', '', 'exhausted', '0', 'startedAt', now, 'endedAt', '',
  'ids', 0, 'completed', 0, 'retried', 0, 'dead', 0, 'workersStarted', 0, 'workersRestarted', 0)
return { ARGV[1], 0 }
`);
