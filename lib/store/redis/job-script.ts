import { COMMON } from './common.lua';
import { DECLARED } from './declared.lua';

/**
 * A script on a job's keys: the shared Lua, then `body` (which returns the
 * reply) between the check of the job's state against its record and the
 * record of what the body left (see integrity.lua).
 */
export const jobScript = (body: string): string => `${COMMON}${DECLARED}
local function main()
${body}
end
check_state()
local reply = main()
record_state()
return reply
`;
