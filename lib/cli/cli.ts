import { parseArgs } from 'node:util'
import { RateSampler } from '../run/rate-sampler'
import { RedisStore } from '../store/redis.store'
import { renderStatus } from './status-view'

const USAGE = `Usage: nestjs-parallel-worker <command> <job> --redis <url> [--prefix <storageKey>]

Commands:
  status [--watch]   state, progress, rate, ETA, ranges and leases per host (--watch: live, Ctrl+C to leave)
  pause              no host hands out anything until resume (leases are kept)
  resume             hands out again
  cancel             ends the active run on every host; the cursor stays
  retry-dead         hands the dead-lettered ranges out again
  reset              cursor back to the start (refused while a run is active)

--prefix defaults to 'parallel-worker', the module's storageKey default.`

const COMMANDS = ['status', 'pause', 'resume', 'cancel', 'retry-dead', 'reset']

/** Thrown for anything the user can fix; printed without a stack. */
export class CliError extends Error {}

interface Io {
  out: (text: string) => void
  /** Resolves when the user asks to stop watching (SIGINT). */
  interrupted: Promise<void>
}

/** Runs one CLI command against the store in Redis; resolves with the exit code. */
export async function cli(argv: string[], io: Io): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { redis: { type: 'string' }, prefix: { type: 'string' }, watch: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`)
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.out(USAGE)
    return 0
  }
  const [command, job] = positionals
  if (!command || !COMMANDS.includes(command)) throw new CliError(`${command ? `Unknown command "${command}".` : 'No command given.'}\n\n${USAGE}`)
  if (!job) throw new CliError(`Name the job: nestjs-parallel-worker ${command} <job> --redis <url>`)
  if (!values.redis) throw new CliError(`--redis <url> is required, e.g. --redis redis://127.0.0.1:6379`)
  const prefix = values.prefix ?? 'parallel-worker'
  const redis = await connect(values.redis)
  try {
    const store = new RedisStore(redis as never, prefix)
    const state = await store.state(job)
    if (state.state === 'idle' && state.runId === null) {
      const jobs = await store.jobs()
      throw new CliError(`No job "${job}" in Redis at ${values.redis} under prefix "${prefix}". ${jobs.length ? `Jobs there: ${jobs.join(', ')}.` : 'No jobs there at all: check --prefix (the module\'s storageKey).'}`)
    }
    switch (command) {
      case 'status':
        return await status(store, job, Boolean(values.watch), io)
      case 'retry-dead':
        io.out(`${await store.retryDead(job)} dead-lettered ranges of "${job}" will be handed out again${state.state === 'running' ? '' : ' by its next run'}.`)
        return 0
      case 'reset':
        try {
          await store.reset(job)
        } catch (e) {
          throw new CliError(`Cannot reset "${job}": ${(e as Error).message}`)
        }
        io.out(`"${job}" reset: its next run starts from the first row.`)
        return 0
      default: {
        const action = command as 'pause' | 'resume' | 'cancel'
        const runId = await store.control(job, action)
        if (!runId) throw new CliError(`"${job}" has no active run to ${action} (it is ${state.state}).`)
        io.out(`${action === 'pause' ? 'Paused' : action === 'resume' ? 'Resumed' : 'Cancelled'} run ${runId} of "${job}"; every host follows within a second.`)
        return 0
      }
    }
  } finally {
    redis.disconnect()
  }
}

async function status(store: RedisStore, job: string, watch: boolean, io: Io): Promise<number> {
  const rates = new RateSampler()
  let stop = false
  void io.interrupted.then(() => (stop = true))
  do {
    const s = await store.state(job)
    const rate = rates.rate(job, s)
    const view = renderStatus(job, s, rate, await store.leasesByOwner(job))
    // In watch mode the view is redrawn in place.
    io.out(watch ? `\x1b[2J\x1b[H${view}\n(watching; Ctrl+C to leave)` : view)
    if (watch) await Promise.race([new Promise(r => setTimeout(r, 1000)), io.interrupted])
  } while (watch && !stop)
  return 0
}

async function connect(url: string) {
  let Redis: typeof import('ioredis').default
  try {
    Redis = (await import('ioredis')).default
  } catch {
    throw new CliError('The CLI needs ioredis: npm install ioredis')
  }
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: () => null })
  // The socket's own error (ECONNREFUSED, ENOTFOUND, auth) says more than "Connection is closed".
  let cause: Error | undefined
  redis.on('error', e => (cause ??= e))
  try {
    await redis.connect()
  } catch (e) {
    redis.disconnect()
    throw new CliError(`Cannot reach Redis at ${url}: ${(cause ?? (e as Error)).message}`)
  }
  return redis
}
