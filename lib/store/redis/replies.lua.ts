import { REPLY_SLOTS } from '../reply-slots';

/**
 * Included in every script: the answers of each host's last REPLY_SLOTS
 * claims and commits that leased something (the REPLIES hash), so one that
 * arrives twice is answered the same and leases nothing more.
 */
export const REPLIES: string = `
-- Each host numbers its claims and commits; the answers of its last ${REPLY_SLOTS} that leased something are kept (more
-- than a host can have in flight: reply-slots.ts), so one that arrives again (a client resending after a reconnect) is
-- answered the same and leases nothing more.
local REPLY_SLOTS = ${REPLY_SLOTS}
local function reply_field(owner, request)
  return owner .. ':' .. (tonumber(request) % REPLY_SLOTS)
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
