/**
 * How many of each host's claims and commits a store remembers the answer
 * of, per job (a request's slot is its number modulo this), so one sent again
 * after a reconnect is answered the same and leases nothing more. It must be
 * above what one host can have in flight for a job: one claim at a time, and
 * per feed lane (up to 60, one per partition loaded at once) 16 pipelined
 * commits plus the one that marks loading exhausted, 1,021 in all
 * (REQUESTS_IN_FLIGHT in run/range-feed.ts); a resend of the oldest of those
 * still finds its answer. 1,024 answers of a few dozen bytes each per host.
 */
export const REPLY_SLOTS = 1024;
