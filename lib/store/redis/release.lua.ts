import { jobScript } from './job-script';

/**
 * release: gives the owner's leases back, due now, at the same attempt.
 * - KEYS: the job's keys (JOB_KEYS).
 * - ARGV: [1] owner, then tokens.
 * - Reply: 1.
 */
export const RELEASE: string = jobScript(`
local now = now_ms()
for i = 2, #ARGV do
  local m, range = take(ARGV[1], ARGV[i])
  if m then add_pending(ARGV[i], range, m.n, m.a, 'released', m.r, now) end
end
return 1
`);
