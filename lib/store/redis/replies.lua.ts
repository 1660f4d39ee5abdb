/**
 * Included in every script: the answers of each host's last 64 claims and
 * commits that leased something (the REPLIES hash), so one that arrives twice
 * is answered the same and leases nothing more.
 */
export const REPLIES: string = `
-- Each host numbers its claims and commits; the answers of its last 64 that leased something are kept, so one
-- that arrives again (a client resending after a reconnect) is answered the same and leases nothing more.
local function reply_field(owner, request)
  return owner .. ':' .. (tonumber(request) % 64)
end
-- The parts of what \`request\` was answered (the request first), or nil when it is new.
local function replayed(owner, request)
  if not request or request == '' then return nil end
  local v = redis.call('HGET', REPLIES, reply_field(owner, request))
  if not v then return nil end
  local parts = {}
  for part in string.gmatch(v, '[^|]+') do parts[#parts + 1] = part end
  if parts[1] ~= request then return nil end
  return parts
end
local function remember(owner, request, ...)
  if request and request ~= '' then redis.call('HSET', REPLIES, reply_field(owner, request), table.concat({ request, ... }, '|')) end
end
`;
