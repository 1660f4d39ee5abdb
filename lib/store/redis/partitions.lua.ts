/**
 * Included in every script (after the key names and `chunked`): the job's
 * partitions, in the PARTS hash: `n` (how many; absent when the job has
 * none), and per partition `<i>`: `<i>:after`, `<i>:upTo`, `<i>:cursor`
 * (JSON, exactly as the host sent them: Lua never decodes an id),
 * `<i>:exhausted` ('1'/'0'), `<i>:ids` (handed out this run), and
 * `<i>:owner` and `<i>:until` while a host loads it.
 */
export const PARTITIONS: string = `
-- The job's number of partitions, or nil when it has none.
local function parts_n()
  local n = redis.call('HGET', PARTS, 'n')
  return n and tonumber(n)
end
-- The indexes of the partitions \`owner\` loads (one HMGET).
local function loaded_by(owner)
  local n, mine = parts_n(), {}
  if not n then return mine end
  local fields, owners = {}, {}
  for i = 0, n - 1 do fields[#fields + 1] = i .. ':owner' end
  chunked(fields, function(...)
    local got = redis.call('HMGET', PARTS, ...)
    for j = 1, #got do owners[#owners + 1] = got[j] end
  end)
  for i = 0, n - 1 do
    if owners[i + 1] == owner then mine[#mine + 1] = i end
  end
  return mine
end
`;
