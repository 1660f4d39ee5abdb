/**
 * Included in every script (after the key names): which hosts take part in
 * the active run (the HOSTS zset, owner by the time until which it counts),
 * so a run waiting out a backoff or a pause still counts as active.
 */
export const PRESENCE: string = `
-- A host takes part in the run until \`till\` (leases of its own keep the run active anyway); gone hosts are pruned.
local function present(owner, till, now)
  redis.call('ZREMRANGEBYSCORE', HOSTS, '-inf', now)
  redis.call('ZADD', HOSTS, till, owner)
end
-- The run is active: a live lease, or a host that took part within its lease time and has not left.
local function hosts_present(now)
  return #redis.call('ZRANGEBYSCORE', HOSTS, '(' .. now, '+inf', 'LIMIT', 0, 1) > 0
end
local function active(now)
  return #redis.call('ZRANGEBYSCORE', DEADLINES, '(' .. now, '+inf', 'LIMIT', 0, 1) > 0 or hosts_present(now)
end
`;
