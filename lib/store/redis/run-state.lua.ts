import { COMMON } from './common.lua'

/**
 * endRun: ends the active run `runId` as completed or failed; no-op when it already ended.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] state ('completed'/'failed'), [3] error ('' for none).
 * - Reply: 1 when it ended the run, 0 otherwise.
 */
export const END_RUN: string = `${COMMON}
if run_id() ~= ARGV[1] or redis.call('HGET', META, 'state') ~= 'running' then return 0 end
redis.call('HSET', META, 'state', ARGV[2], 'error', ARGV[3], 'endedAt', now_ms())
return 1
`

/**
 * countWorkers: adds to the run's worker counters.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] workers started, [3] workers restarted.
 * - Reply: 1, or 0 when `runId` is not the job's run.
 */
export const COUNT_WORKERS: string = `${COMMON}
if run_id() ~= ARGV[1] then return 0 end
redis.call('HINCRBY', META, 'workersStarted', tonumber(ARGV[2]))
redis.call('HINCRBY', META, 'workersRestarted', tonumber(ARGV[3]))
return 1
`

/**
 * state: what the job's run looks like.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: none.
 * - Reply: { the meta hash as a flat list, leases, pending retries, dead letters, store time (ms) }.
 */
export const STATE: string = `${COMMON}
return { redis.call('HGETALL', META), redis.call('ZCARD', DEADLINES), redis.call('ZCARD', PENDING), redis.call('LLEN', DEAD), now_ms() }
`

/**
 * takePermits: hand-outs of the current second (store time), shared by every host.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] wanted, [2] perSecond.
 * - Reply: { granted, waitMs (until the next second when none was granted) }.
 */
export const TAKE_PERMITS: string = `${COMMON}
local now = now_ms()
local second = math.floor(now / 1000)
local used = 0
if tonumber(redis.call('HGET', META, 'permitSecond') or '-1') == second then used = tonumber(redis.call('HGET', META, 'permitUsed')) end
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
redis.call('HSET', META, 'permitSecond', second, 'permitUsed', used + granted)
return { granted, granted > 0 and 0 or (1000 - now % 1000) }
`

/**
 * control: pauses, resumes or cancels the active run, for every host.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] 'pause' | 'resume' | 'cancel'.
 * - Reply: the active run's id, or nil when none is active.
 */
export const CONTROL: string = `${COMMON}
if redis.call('HGET', META, 'state') ~= 'running' then return false end
if ARGV[1] == 'cancel' then
  redis.call('HSET', META, 'state', 'stopped', 'control', 'run', 'endedAt', now_ms())
else
  redis.call('HSET', META, 'control', ARGV[1] == 'pause' and 'pause' or 'run')
end
return run_id()
`

/**
 * reset: cursor back to the start, nothing leased or pending, the job idle (its last run's counters gone).
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
redis.call('DEL', LEASES, DEADLINES, PENDING, PDATA, HOSTS, REPLIES)
return { 'ok' }
`

/**
 * setTotal: records the job's total for run `runId`.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] runId, [2] total.
 * - Reply: 1.
 */
export const SET_TOTAL: string = `${COMMON}
if run_id() == ARGV[1] then redis.call('HSET', META, 'total', ARGV[2]) end
return 1
`
