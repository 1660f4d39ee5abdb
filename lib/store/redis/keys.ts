/** A job's Redis keys, in the order the scripts get them as KEYS (each is `{<prefix>:<job>}:<name>`). */
export const JOB_KEYS = [
  'meta',
  'leases',
  'deadlines',
  'pending',
  'pdata',
  'dead',
  'hosts',
  'replies',
  'parts',
  'hist',
  'histrec',
] as const;

export type JobKey = (typeof JOB_KEYS)[number];
