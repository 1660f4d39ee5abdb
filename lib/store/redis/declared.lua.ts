/**
 * Included (after COMMON) by the scripts of the calls an app makes on a job
 * besides starting a run: status, pause/resume/cancel, reset, retryDead,
 * history, dead letters, leases per host. The check runs in the same script
 * as the call, so no other app's run can slip in between.
 */
export const DECLARED: string = `
-- { 'declared', the stored declaration } when the job belongs to another app than \`declared_by\` (its loader and
-- handler); nil when the call goes on: it names no app ('', the CLI), the job holds no declaration yet, or the same.
local function other_app(declared_by)
  if not declared_by or declared_by == '' then return nil end
  local stored = redis.call('HGET', META, 'declaredBy')
  if stored and stored ~= declared_by then return { 'declared', stored } end
  return nil
end
`;
