import { inspect } from 'node:util';
import { redactSecrets } from './redact-secrets';

/** A short, one-line picture of a user value for error messages. */
export const show = (value: unknown): string =>
  inspect(value, {
    depth: 2,
    maxArrayLength: 8,
    maxStringLength: 80,
    breakLength: Infinity,
    compact: true,
  });

const FIX_LOADER =
  'Return ids sorted ascending, each after the cursor (e.g. WHERE id > $cursor ORDER BY id LIMIT $limit).';

export const BAD_LOADER_SHAPE = (job: string, value: unknown) =>
  `Job "${job}": the range loader returned ${show(value)}, which is neither an array of ids nor a range object { lastId, idsRange? }. Return ids (or [] / null when there is no more data).`;

export const BAD_ID = (job: string, value: unknown, where: string) =>
  `Job "${job}": the range loader returned an invalid id ${show(value)} ${where}. Ids must be numbers, strings or bigints.`;

export const UNSORTED_IDS = (
  job: string,
  prev: unknown,
  id: unknown,
  index: number,
) =>
  `Job "${job}": the range loader returned ids that are not sorted ascending: ${show(id)} at index ${index} comes after ${show(prev)}. ${FIX_LOADER}` +
  (typeof id === 'string'
    ? ` If the database orders this key differently (a text key), set idOrder ('text', 'binary' or a comparator) in ParallelWorkerModule.forRoot().`
    : '');

export const DUPLICATE_IDS = (job: string, id: unknown, index: number) =>
  `Job "${job}": the range loader returned the id ${show(id)} twice (index ${index}). ${FIX_LOADER}`;

export const NOT_AFTER_CURSOR = (job: string, id: unknown, cursor: unknown) =>
  `Job "${job}": the range loader returned ${show(id)}, which is not after the cursor ${show(cursor)}; those rows were handed out already. ${FIX_LOADER}`;

/** A loader returned an id past the end of the partition it loads. */
export const OUTSIDE_PARTITION = (
  job: string,
  id: unknown,
  p: { index: number; count: number; after: unknown; upTo: unknown },
) =>
  `Job "${job}": the range loader returned ${show(id)} while loading partition ${p.index + 1} of ${p.count}, (${show(p.after)}, ${show(p.upTo)}]; it is past the partition's end, so another partition hands it out. Return only ids up to ctx.partition.upTo (e.g. WHERE id > $lastId AND id <= $upTo).`;

/** What a @RangePartitions method returned cannot be used. */
export const BAD_PARTITIONS = (job: string, method: string, why: string) =>
  `Job "${job}": ${method} (@RangePartitions) ${why}. Return [{ after, upTo }, …] in id order, each after below its upTo and equal to the upTo before it, only the first after and the last upTo null; or { min, max } with @RangePartitions('${job}', { count }).`;

export const LAST_ID_BEFORE_IDS = (job: string, lastId: unknown, id: unknown) =>
  `Job "${job}": the range object's lastId ${show(lastId)} is before its id ${show(id)}; lastId must be the largest id of the range.`;

export const MISSING_LAST_ID = (job: string, value: unknown) =>
  `Job "${job}": the range object ${show(value)} has ids but no lastId. Set lastId to the cursor after this range.`;

export const PAYLOAD_NOT_JSON = (job: string, key: string, reason: string) =>
  `Job "${job}": the range object's payload "${key}" cannot travel to a worker as JSON (${reason}). Keep payloads to plain JSON values.`;

export const UNKNOWN_JOB = (job: string, known: string[]) =>
  `No job "${job}" is declared. Declare it with @RangeLoader('${job}') and @RangeHandler('${job}'), or run one of: ${known.map((j) => `"${j}"`).join(', ') || '(none)'}.`;

export const JOB_REQUIRED = (known: string[]) =>
  `This app declares several jobs (${known.map((j) => `"${j}"`).join(', ')}); name the one to run: run('${known[0]}').`;

export const NO_JOBS = () =>
  "No job is declared. Add a provider with a @RangeLoader() and a @RangeHandler() method and list it in a module's providers.";

/** The run a host is in is no longer the one the store holds (Redis restarted empty, evicted, failed over, flushed). */
export const STATE_LOST = (job: string, runId: string, found: string | null) =>
  `the coordination state of run ${runId} of job "${job}" was lost from the store (${found ? `it now holds run ${found}` : 'it holds no run'}), ` +
  `so this host cannot tell which of its ranges were handled. Nothing was reported completed. Call run() again: it joins the run the store ` +
  `holds, or starts one from the cursor the store has (from the first row if it lost all of the job's state), so rows may be handled again ` +
  `but none are skipped; if the store kept only part of the job's state, run() is refused naming what was lost and how to start the job ` +
  `again (from or reset). Keep Redis persistent ` +
  `(appendonly) and without eviction (maxmemory-policy noeviction) to avoid this.`;

/** The store holds this run's id, but the job is idle: it was reset while this host was cut off from the store past leaseMs. */
export const RESET_UNDER_RUN = (job: string, runId: string) =>
  `job "${job}" was reset while run ${runId} was still going on this host (it was cut off from the coordination store for ` +
  `longer than leaseMs, so its leases had expired and the reset was allowed): the ranges it held are no longer in the store, ` +
  `so this run cannot be reported completed. Call run() again: the job starts from the cursor the reset left (the first row).`;

/** Part of a job's state is missing from the store against the record it keeps (a key evicted, deleted, or failed over). */
export const STATE_LOST_PART = (
  job: string,
  runId: string | null,
  parts: string,
  /** `sql`: a database the store's own tables are in (rows deleted from outside), not Redis. */
  store: 'redis' | 'sql' = 'redis',
) =>
  `part of the coordination state of job "${job}"${runId ? ` (run ${runId})` : ''} was lost from the store (${parts}: ` +
  `${store === 'sql' ? 'rows deleted, or a table dropped or emptied, by another program' : 'evicted, deleted, or missing after a failover'}), ` +
  `so ranges it held may never be handed out again. Nothing was reported completed over it. ` +
  `Start the job again from a cursor before which every row was handled: run('${job}', { from }) (from: null starts over; ` +
  `the ranges still in the store are kept), or reset('${job}'); run() without from is refused until then. ` +
  (store === 'sql'
    ? `Leave the store's tables (pw_*) to nestjs-parallel-worker: edit or restore them only with no run going on.`
    : `Keep Redis persistent (appendonly) and without eviction (maxmemory-policy noeviction) to avoid this.`);

/** The Redis server may evict keys of running jobs. */
export const REDIS_EVICTS = (where: string, policy: string) =>
  `${where} runs with maxmemory-policy ${policy}: under memory pressure it may evict a job's coordination state, and ` +
  `a run that finds part of its state gone fails with "state lost". Set maxmemory-policy noeviction (or give Redis ` +
  `room enough) for jobs to run through.`;

/** Another app (another loader and handler) already uses this job's state in the store. */
export const JOB_DECLARED_ELSEWHERE = (
  job: string,
  stored: string,
  ours: string,
) =>
  `Job "${job}" in this store belongs to another app, which declares it as ${stored}; this app declares it as ${ours}. ` +
  `Two apps sharing one Redis need different storageKey values (ParallelWorkerModule.forRoot({ storageKey })). ` +
  `If this is the same app after renaming that class or method, take the job over once with run('${job}', { from }) ` +
  `(from: the cursor status() shows, or null to start over).`;

/**
 * Another app's call on a job (status, pause, resume, cancel, reset,
 * retryDead, history, deadLetters): an app steers only the jobs it declares.
 */
export const JOB_STEERED_ELSEWHERE = (
  job: string,
  stored: string,
  ours: string,
  call: string,
) =>
  `Job "${job}" in this store belongs to another app, which declares it as ${stored}; this app declares it as ${ours}, so its ${call}() is refused: an app steers only its own jobs. ` +
  `Two apps sharing one Redis need different storageKey values (ParallelWorkerModule.forRoot({ storageKey })). ` +
  `To act on that app's job, use that app or the CLI (npx nestjs-parallel-worker <command> ${job} --prefix <storageKey>); ` +
  `if this is the same app after renaming that class or method, take the job over once with run('${job}', { from }).`;

/** `from` while hosts hold live leases of the active run. */
const ACTIVE = (runId: string) =>
  `run ${runId} is active (a host holds a lease of it, or took part in it within leaseMs and has not stopped)`;

/** `from` while the run is active. */
export const RUN_BUSY = (runId: string) =>
  `${ACTIVE(runId)}; wait for it or stop it before moving the cursor`;

/** `reset` while the run is active. */
export const RESET_BUSY = (runId: string) =>
  `${ACTIVE(runId)}; cancel it or wait for it before resetting the job`;

const FIX_ORDER =
  "Set idOrder in ParallelWorkerModule.forRoot() to the key's order: 'numeric' (numbers, integer strings), 'text' (strings by code unit), 'binary' (strings by code point) or a comparator.";

/** `reset()` while this host runs the job. */
export const RESET_HERE = (job: string) =>
  `Job "${job}" is running on this host; cancel() it or wait for it before reset().`;

/** A run asked to start (the dashboard's) while the job already runs on this host. */
export const ACTIVE_HERE = (job: string) =>
  `Job "${job}" is running on this host already: pause, cancel or wait for it before starting another run.`;

/** `pause()`, `resume()` or `cancel()` with no run to act on. */
export const NO_ACTIVE_RUN = (job: string, action: string) =>
  `Job "${job}" has no active run to ${action}.`;

/** An id the job's idOrder cannot order. */
export const ID_REFUSED = (
  job: string,
  id: unknown,
  where: string,
  rule: 'not-integer' | 'unsafe' | 'not-string',
  order: string,
) => {
  const why =
    rule === 'unsafe'
      ? `a number beyond Number.MAX_SAFE_INTEGER, whose last digits may already be wrong. Return such ids as strings (node-postgres returns bigint columns as strings).`
      : rule === 'not-integer'
        ? `a number that is not an integer, which ${order} does not order. ${FIX_ORDER}`
        : `not a string, and ${order} orders string ids. ${FIX_ORDER}`;
  return `Job "${job}": the range loader returned ${show(id)} ${where}: ${why}`;
};

/** Integer ids and text ids in one order. */
export const IDS_MIXED = (job: string, a: unknown, b: unknown) =>
  `Job "${job}": the range loader mixes the integer id ${show(a)} and the text id ${show(b)}; idOrder 'numeric' orders integers ` +
  `(numbers and integer strings) numerically and other strings as text, never both in one job. For a text key set idOrder: 'text' (or 'binary'); ` +
  `for an integer key return only integers.`;

/** The store handed out a fencing token this host still holds. */
export const TOKEN_REUSED = (job: string, runId: string, token: number) =>
  `the store issued fencing token ${token} again while this host still holds it, so its state went back (a failover to a replica that ` +
  `lagged, a restore from an older copy). Run ${runId} of job "${job}" cannot tell which ranges were handled; nothing was reported completed. ` +
  `Call run() again: rows may be handled again, none are skipped.`;

/** The store's cursor went back behind one this host committed in the same run. */
export const CURSOR_WENT_BACK = (
  job: string,
  runId: string,
  cursor: unknown,
  committed: unknown,
) =>
  `the store's cursor of run ${runId} of job "${job}" went back to ${JSON.stringify(cursor)}, behind ${JSON.stringify(committed)} that this host ` +
  `committed (a failover to a replica that lagged, a restore from an older copy), so this host cannot tell which ranges were handled. ` +
  `Nothing was reported completed. Call run() again: rows may be handled again, none are skipped.`;

/** The store did not answer `run()`'s first call in time (the cause is a client's text: masked too). */
export const STORE_UNAVAILABLE = (
  job: string,
  where: string,
  timeoutMs: number,
  cause: string,
) =>
  redactSecrets(
    `Job "${job}" did not start: the coordination store (${where}) did not answer within ${timeoutMs} ms (storeConnectTimeoutMs): ${cause}. ` +
      `Check that it runs and that this host can reach it; nothing was started or changed.`,
  );

/** run() would join a run (`where`) whose params differ from its own. */
export const PARAMS_DIFFER = (
  job: string,
  where: string,
  mine: string | undefined,
  theirs: string | undefined,
): string =>
  `Job "${job}" was not started: ${where === 'this host' ? 'its run on this host' : where} is active with ${theirs === undefined ? 'no params' : `params ${theirs}`}, and this run() has ${mine === undefined ? 'none' : `params ${mine}`}. A run keeps one set of params on every host: call run('${job}') with the same params to join it, or wait for it to end (or cancel it) and start another.`;

/** The @RangePartitions method did not answer within loaderTimeoutMs: a run cannot start without its plan. */
export const PARTITIONS_TIMED_OUT = (job: string, method: string, ms: number) =>
  `${method} (@RangePartitions) did not answer within loaderTimeoutMs (${ms} ms), and job "${job}" cannot run without its partition plan; ` +
  `nothing was started or changed. Make it answer sooner (e.g. MIN and MAX over an indexed id), or raise loaderTimeoutMs, then run the job again.`;

/** The job's cursor kept moving (a reset, another host's run) while its partitions were planned. */
export const PLAN_CURSOR_MOVED = (job: string, method: string, times: number) =>
  `Job "${job}" was not started: its cursor moved ${times} times while ${method} (@RangePartitions) planned the partitions (a reset, ` +
  `or another host's run), and a plan clipped at a cursor the job no longer has would skip ids. Nothing was started; run the job again.`;

/** The @RangeTotal method did not answer within loaderTimeoutMs: the run goes on without a total. */
export const TOTAL_TIMED_OUT = (job: string, method: string, ms: number) =>
  `Job "${job}": ${method} (@RangeTotal) did not answer within loaderTimeoutMs (${ms} ms); the run goes on without a total, ` +
  `so status() has no percent or ETA. Make it answer sooner (an estimate such as pg_class.reltuples will do) or raise loaderTimeoutMs.`;

/** The throttle option did not answer within healthTimeoutMs: counted as unknown, hand-out goes on. */
export const THROTTLE_TIMED_OUT = (job: string, ms: number, againMs: number) =>
  `Job "${job}": the throttle option did not answer within healthTimeoutMs (${ms} ms); counted as unknown, so handing out goes on ` +
  `as if it said go, and it is asked again in ${againMs} ms. Make it answer sooner (a query with a statement timeout) or raise healthTimeoutMs.`;
/** A health indicator could not tell. */
export const HEALTH_UNKNOWN = (
  job: string,
  indicator: string,
  reason: string,
  holdOnUnknown: boolean,
) =>
  `Job "${job}": health indicator ${indicator} could not tell (${reason}); counted as unknown, so ${holdOnUnknown ? 'the run holds (holdOnUnknown)' : 'handing out goes on (set holdOnUnknown: true to hold instead)'}. It is asked again at the next healthIntervalMs.`;
/** More than maxDeadRatio of the run's ended ranges went to the dead letters. */
export const TOO_MANY_DEAD = (
  job: string,
  dead: number,
  ended: number,
  maxDeadRatio: number,
  lastError: string,
) =>
  `${dead} of the ${ended} ranges of job "${job}" that ended in this run went to the dead letters ` +
  `(${Math.round((dead / ended) * 100)}%, more than maxDeadRatio ${maxDeadRatio}); the last handler error: ${lastError}. ` +
  `Fix the handler, then retryDead('${job}') and run again; or raise maxDeadRatio (1: never fail for dead letters).`;
/** How the messages name the file: the option the user gave, or the default they got by giving none. */
const SQLITE_OPTION = (path: string, byDefault = false) =>
  byDefault
    ? `option "storage" (not set: the default store, the SQLite file parallel-worker.db in the working directory, ${path})`
    : `option "storage" ('sqlite:${path}')`;

/** The SQLite file cannot be opened or created (a missing or read-only directory, a read-only file). */
export const SQLITE_CANNOT_OPEN = (
  path: string,
  reason: string,
  byDefault?: boolean,
) =>
  `ParallelWorkerModule: ${SQLITE_OPTION(path, byDefault)}: cannot open or create the SQLite file ${path} (${reason}). ` +
  `Make its directory exist and let this process write the directory and the file, or name another path with storage: 'sqlite:<path>'.`;

/** The file at the SQLite path holds something else. */
export const SQLITE_NOT_A_DATABASE = (path: string, byDefault?: boolean) =>
  `ParallelWorkerModule: ${SQLITE_OPTION(path, byDefault)}: ${path} is not a SQLite database (the file holds something else); nothing was written to it. ` +
  `Name another file with storage: 'sqlite:<path>', or move that file away if it is not needed.`;

/** Another process held the SQLite file's write lock past the busy timeout. */
export const SQLITE_LOCKED = (path: string, busyTimeoutMs: number) =>
  `the SQLite file ${path} stayed locked by another process for more than ${busyTimeoutMs} ms (the busy timeout): ` +
  `a process that holds a long write transaction on it (a SQLite shell, a backup) must finish or be closed, ` +
  `or give this app a file of its own with the "storage" option (storage: 'sqlite:<path>')`;

/** node:sqlite is missing: Node older than 22.13. */
export const SQLITE_NEEDS_NODE = (
  path: string,
  version: string,
  byDefault?: boolean,
) =>
  `ParallelWorkerModule: ${SQLITE_OPTION(path, byDefault)}: the SQLite store needs Node 22.13 or later (node:sqlite); this is Node ${version}. ` +
  `Upgrade Node, or choose another store with the "storage" option.`;

/** The database's schema is newer than this version of the module knows. */
export const SQL_SCHEMA_NEWER = (where: string, found: number, known: number) =>
  `ParallelWorkerModule: option "storage": the ${where} holds the store's tables at schema version ${found}, newer than this version of nestjs-parallel-worker knows (${known}); nothing was changed. ` +
  `Upgrade nestjs-parallel-worker on this host to the version the other hosts run, or name another database with the "storage" option.`;

/** `storage: 'sqlite:'` with no path. */
export const SQLITE_PATH_MISSING =
  "ParallelWorkerModule: option \"storage\" is 'sqlite:' with no path: name the file, as in storage: 'sqlite:./parallel-worker.db' (created on first use).";

/** Logged once per process, at the first run on `storage: 'memory'`. */
export const MEMORY_STORE_FORGETS = (job: string) =>
  `Job "${job}": storage 'memory' keeps the cursor, leases and dead letters in this process only: they are gone when it ends, and the next run starts over. Omit storage for the SQLite file parallel-worker.db (runs resume), or give a Redis URL for many hosts.`;
