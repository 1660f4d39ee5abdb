import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { redactSecrets } from '../redact-secrets';
import { RateSampler } from '../run/rate-sampler';
import type { JobStore } from '../store/job-store.interface';
import { CliError } from './cli-error';
import { renderDead, renderHistory } from './history-view';
import { connect, redisTarget } from './redis-target';
import {
  DEFAULT_SQLITE_FILE,
  sqliteFailure,
  sqliteTarget,
  type SqliteTarget,
} from './sqlite-target';
import { renderStatus, statusJson } from './status-view';

const USAGE = `Usage: nestjs-parallel-worker <command> <job> [--store sqlite:<path> | --redis <url>] [--prefix <storageKey>]

Commands:
  status [--watch]   state, progress, rate, ETA, ranges and leases per host (--watch: live, Ctrl+C to leave;
                     --json: one JSON object per view, for scripts)
  history            ended runs, newest first: status, start, duration, ids, ranges, who started them, params
                     (--limit <n>: how many, default 20; --json: the store's records as one JSON array)
  dead               dead-lettered ranges, oldest first: run, attempts, ids, when, error
                     (--offset <n> --limit <n>: which, default the first 50; --json: { total, offset, deadLetters })
  pause              no host hands out anything until resume (leases are kept)
  resume             hands out again
  cancel             ends the active run on every host; the cursor stays
  retry-dead         hands the dead-lettered ranges out again (--run <runId> --first <id>: only the dead letter
                     of that run whose range starts at that id, as dead lists them)
  reset              cursor back to the start (refused while a run is active)

Where the store is:
  --store sqlite:<path>      the SQLite file the app's storage option names ('sqlite:<path>'); with no --store and
                             no Redis named, ./${DEFAULT_SQLITE_FILE} when it exists (the CLI never creates one)
  --redis <url>              Redis URL; default: $PARALLEL_WORKER_REDIS_URL, then $REDIS_URL
  --cluster                  --redis lists Redis Cluster nodes: [user:password@]host:port[,...] (URLs too); the
                             credentials (or ?username=…&password=…) are the nodes'
  --sentinel <host:port,...> through Sentinel: the sentinels, with --name <master> (the monitored master's name);
                             user:password@ on a sentinel is the sentinels' own (or ?sentinelPassword=…), and
                             ?username=…&password=… the master's, as ioredis names them
Passwords are never printed: a URL's credentials and query show as ***.
  --prefix <storageKey>      default: $PARALLEL_WORKER_PREFIX, then 'parallel-worker' (the module's storageKey default)`;

const COMMANDS = [
  'status',
  'history',
  'dead',
  'pause',
  'resume',
  'cancel',
  'retry-dead',
  'reset',
];

/** Default `--limit` of the commands that list. */
const LIMITS: Record<string, number> = { history: 20, dead: 50 };

/** What the commands ask of a job: the same calls on Redis and on SQLite. */
type CliJob = Pick<
  JobStore,
  'state' | 'control' | 'reset' | 'retryDead' | 'deadLetters'
> &
  Required<Pick<JobStore, 'history' | 'leasesByOwner'>>;

/** What the commands ask of a store. */
interface CliStore {
  job(name: string): CliJob;
  /** Jobs with state under the prefix, listed when the one asked for is unknown. */
  jobs(): Promise<string[]>;
}

/** An open store, where it is (for messages), and how to let it go. */
interface OpenStore {
  store: CliStore;
  label: string;
  /** The store's own failures, said for the CLI (the flag and what to do). */
  explain: (error: unknown) => unknown;
  close: () => Promise<void>;
}

export { CliError } from './cli-error';

interface Io {
  out: (text: string) => void;
  /** Output goes to a terminal (watch redraws in place), not a pipe or a file. */
  tty?: boolean;
  /** Where PARALLEL_WORKER_REDIS_URL, REDIS_URL and PARALLEL_WORKER_PREFIX are read. */
  env?: Record<string, string | undefined>;
  /** Where the default SQLite file is looked for; default the process's working directory. */
  cwd?: string;
  /** Resolves when the user asks to stop watching (SIGINT). */
  interrupted: Promise<void>;
}

/** Runs one CLI command against the store (Redis or a SQLite file); resolves with the exit code. */
export async function cli(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        store: { type: 'string' },
        redis: { type: 'string' },
        cluster: { type: 'boolean' },
        sentinel: { type: 'string' },
        name: { type: 'string' },
        prefix: { type: 'string' },
        watch: { type: 'boolean' },
        json: { type: 'boolean' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        run: { type: 'string' },
        first: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  // Everything printed is masked: the addresses given and the store's own text (errors, params).
  const write = io.out;
  io = { ...io, out: (text) => write(redactSecrets(text)) };
  if (values.help) {
    // The usage is this file's own text: its `[user:password@]host:port` patterns are no secret.
    write(USAGE);
    return 0;
  }
  const [command, job] = positionals;
  if (!command || !COMMANDS.includes(command))
    throw new CliError(
      `${command ? `Unknown command "${command}".` : 'No command given.'}\n\n${USAGE}`,
    );
  if (!job)
    throw new CliError(
      `Name the job: nestjs-parallel-worker ${command} <job> [--store sqlite:<path> | --redis <url>]`,
    );
  if (values.limit !== undefined && !(command in LIMITS))
    throw new CliError(`--limit is for history and dead, not ${command}.`);
  if (values.offset !== undefined && command !== 'dead')
    throw new CliError(`--offset is for dead, not ${command}.`);
  if (
    (values.run !== undefined || values.first !== undefined) &&
    command !== 'retry-dead'
  )
    throw new CliError(`--run and --first are for retry-dead, not ${command}.`);
  if ((values.run === undefined) !== (values.first === undefined))
    throw new CliError(
      'retry-dead names one dead letter with both --run <runId> and --first <id> (as dead lists them), or neither for all of them.',
    );
  const limit =
    values.limit === undefined
      ? LIMITS[command]
      : whole('--limit', values.limit, 1);
  const offset =
    values.offset === undefined ? 0 : whole('--offset', values.offset, 0);
  const prefix =
    values.prefix ?? io.env?.PARALLEL_WORKER_PREFIX ?? 'parallel-worker';
  const open = await openStore(values, prefix, io);
  try {
    return await run(command, job, open, prefix, values, limit, offset, io);
  } catch (e) {
    throw open.explain(e);
  } finally {
    await open.close();
  }
}

/** The store the flags name: `--store sqlite:<path>`, Redis, or the default file in the working directory. */
async function openStore(
  values: {
    store?: string;
    redis?: string;
    cluster?: boolean;
    sentinel?: string;
    name?: string;
  },
  prefix: string,
  io: Io,
): Promise<OpenStore> {
  const env = io.env ?? {};
  if (values.store !== undefined) {
    if (values.redis !== undefined || values.sentinel !== undefined)
      throw new CliError(
        'Give one store: --store or --redis/--sentinel, not both.',
      );
    if (!values.store.startsWith('sqlite:'))
      throw new CliError(
        `--store takes sqlite:<path> (the app's storage option), got "${values.store}"; for Redis use --redis <url>.`,
      );
    return openSqlite(
      sqliteTarget(
        values.store.slice('sqlite:'.length),
        `--store ${values.store}`,
      ),
      prefix,
    );
  }
  // An empty variable counts as unset, as a shell's `REDIS_URL=` means.
  const redis = values.redis || env.PARALLEL_WORKER_REDIS_URL || env.REDIS_URL;
  if (!redis && !values.sentinel) {
    const cwd = io.cwd ?? process.cwd();
    const file = join(cwd, DEFAULT_SQLITE_FILE);
    // The module's default store is not this file yet: a missing one means no store here, never a new one.
    if (!existsSync(file))
      throw new CliError(
        `No store found: no --store or --redis given, $PARALLEL_WORKER_REDIS_URL and $REDIS_URL are not set, and there is no ${DEFAULT_SQLITE_FILE} in ${cwd}. ` +
          `Name the app's store: --store sqlite:<path> (the file its storage option names) or --redis <url>, e.g. --redis redis://127.0.0.1:6379; or run the CLI in the app's working directory.`,
      );
    return openSqlite(
      sqliteTarget(
        file,
        `${DEFAULT_SQLITE_FILE} (the default store, found in the working directory)`,
      ),
      prefix,
    );
  }
  const target = redisTarget({ ...values, redis });
  const client = await connect(target);
  const { RedisStore } = await import('../store/redis.store');
  return {
    store: new RedisStore(client, prefix),
    label: `Redis at ${target.label}`,
    explain: (e) => e,
    close: () => {
      client.disconnect();
      return Promise.resolve();
    },
  };
}

async function openSqlite(
  target: SqliteTarget,
  prefix: string,
): Promise<OpenStore> {
  const { SqliteStore } = await import('../store/sql/sqlite.store');
  const store = new SqliteStore(target.path, { storageKey: prefix });
  return {
    store,
    label: target.label,
    explain: (e) => sqliteFailure(e, target),
    close: () => store.close(),
  };
}

/** One command against an open store; the CLI acts as the operator, so no call names an app. */
async function run(
  command: string,
  job: string,
  { store, label }: OpenStore,
  prefix: string,
  values: { watch?: boolean; json?: boolean; run?: string; first?: string },
  limit: number,
  offset: number,
  io: Io,
): Promise<number> {
  const state = await store.job(job).state();
  if (state.state === 'idle' && state.runId === null) {
    const jobs = await store.jobs();
    throw new CliError(
      `No job "${job}" in ${label} under prefix "${prefix}". ${jobs.length ? `Jobs there: ${jobs.join(', ')}.` : "No jobs there at all: check --prefix (the module's storageKey)."}`,
    );
  }
  switch (command) {
    case 'status':
      return await status(
        store,
        job,
        Boolean(values.watch),
        Boolean(values.json),
        io,
      );
    case 'history': {
      const records = await store.job(job).history({ limit });
      io.out(
        values.json
          ? JSON.stringify(records)
          : renderHistory(job, records, limit),
      );
      return 0;
    }
    case 'dead': {
      const deadLetters = await store.job(job).deadLetters({ offset, limit });
      io.out(
        values.json
          ? JSON.stringify({ total: state.dead, offset, deadLetters })
          : renderDead(job, state.dead, offset, deadLetters),
      );
      return 0;
    }
    case 'retry-dead':
      if (values.run !== undefined && values.first !== undefined) {
        // The store compares ids as text, so the flag's text names a numeric id too.
        const only = { runId: values.run, firstId: values.first };
        if (!(await store.job(job).retryDead({ only })))
          throw new CliError(
            `No dead letter of "${job}" from run ${only.runId} starts at id ${only.firstId} (retried or reset already?); nothing was retried. dead lists them.`,
          );
        io.out(
          `The dead letter of "${job}" from run ${only.runId} starting at id ${only.firstId} will be handed out again${state.state === 'running' ? '' : ' by its next run'}.`,
        );
        return 0;
      }
      io.out(
        `${await store.job(job).retryDead()} dead-lettered ranges of "${job}" will be handed out again${state.state === 'running' ? '' : ' by its next run'}.`,
      );
      return 0;
    case 'reset':
      try {
        await store.job(job).reset();
      } catch (e) {
        throw new CliError(`Cannot reset "${job}": ${(e as Error).message}`);
      }
      io.out(`"${job}" reset: its next run starts from the first row.`);
      return 0;
    default: {
      const action = command as 'pause' | 'resume' | 'cancel';
      const runId = await store.job(job).control({ action });
      if (!runId)
        throw new CliError(
          `"${job}" has no active run to ${action} (it is ${state.state}).`,
        );
      io.out(
        `${action === 'pause' ? 'Paused' : action === 'resume' ? 'Resumed' : 'Cancelled'} run ${runId} of "${job}"; every host follows within a second.`,
      );
      return 0;
    }
  }
}

async function status(
  store: CliStore,
  job: string,
  watch: boolean,
  json: boolean,
  io: Io,
): Promise<number> {
  const rates = new RateSampler();
  let stop = false;
  void io.interrupted.then(() => (stop = true));
  do {
    const s = await store.job(job).state();
    const rate = rates.rate(job, s);
    const owners = await store.job(job).leasesByOwner();
    if (json) {
      io.out(JSON.stringify(statusJson(job, s, rate, owners)));
      if (watch)
        await Promise.race([
          new Promise((r) => setTimeout(r, 1000)),
          io.interrupted,
        ]);
      continue;
    }
    const view = renderStatus(job, s, rate, owners);
    // In watch mode on a terminal the view is redrawn in place; into a pipe or file, each view follows the last.
    io.out(
      !watch
        ? view
        : io.tty
          ? `\x1b[2J\x1b[H${view}\n(watching; Ctrl+C to leave)`
          : `${view}\n`,
    );
    if (watch)
      await Promise.race([
        new Promise((r) => setTimeout(r, 1000)),
        io.interrupted,
      ]);
  } while (watch && !stop);
  return 0;
}

/** A flag's value as a whole number of at least `min`. */
function whole(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min)
    throw new CliError(
      `${flag} takes a whole number ≥ ${min}, got ${JSON.stringify(value)}.`,
    );
  return n;
}
