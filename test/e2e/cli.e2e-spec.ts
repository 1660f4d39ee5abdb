import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startFixture } from '../support/fixture'
import { countProcessed as processed, createPgItems, DATABASE_URL, dropPgTable, pgCounts } from '../support/postgres'
import { REDIS_URL } from '../support/redis-server'

const CLI = join(__dirname, '../../dist/cli/main.js')
const ROWS = 20_000

const cli = async (...args: string[]): Promise<{ code: number; out: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args])
    return { code: 0, out: stdout + stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, out: err.stdout + err.stderr }
  }
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** The CLI from a second terminal, against a running fixture host that shares its Redis. */
describe('nestjs-parallel-worker CLI (e2e)', () => {
  let table: string
  afterAll(async () => dropPgTable(table))

  it('pauses, shows, resumes a running job and retries its dead letters', async () => {
    table = await createPgItems(ROWS)
    const prefix = `pw-cli-${randomBytes(4).toString('hex')}`
    const host = startFixture({
      DATABASE_URL, FIXTURE_TABLE: table, REDIS_URL, FIXTURE_PREFIX: prefix, FIXTURE_WORKERS: 2, FIXTURE_RANGE_SIZE: 500,
      FIXTURE_HANDLER_MS: 150, FIXTURE_FAIL_ALWAYS: 1234, FIXTURE_MAX_ATTEMPTS: 1, FIXTURE_TOTAL: 1,
    })
    const opts = ['--redis', REDIS_URL, '--prefix', prefix]
    while ((await processed(table)) < 2000) await sleep(50)

    const paused = await cli('pause', 'items', ...opts)
    expect(paused).toMatchObject({ code: 0 })
    expect(paused.out).toMatch(/^Paused run [0-9a-f-]+ of "items"; every host follows within a second\./)
    await sleep(1500) // a second to obey, then the ranges in flight finish
    const atPause = await processed(table)
    await sleep(1500)
    expect(await processed(table)).toBe(atPause)
    const status = await cli('status', 'items', ...opts)
    expect(status.out).toMatch(/^job items: paused \(run [0-9a-f-]+\)\n/)
    expect(status.out).toMatch(/% \| [\d,]+\/20,000 ids \|/)
    expect(status.out).toMatch(/leases per host: h-[0-9a-f-]+ \d+/)

    expect((await cli('resume', 'items', ...opts)).out).toMatch(/^Resumed run/)
    const result = await host.exited
    expect(result.code).toBe(0)
    expect(result.summary).toMatchObject({ status: 'completed', ids: ROWS - 500, ranges: { dead: 1 } })

    const retried = await cli('retry-dead', 'items', ...opts)
    expect(retried.out).toBe('1 dead-lettered ranges of "items" will be handed out again by its next run.\n')
    const again = await startFixture({ DATABASE_URL, FIXTURE_TABLE: table, REDIS_URL, FIXTURE_PREFIX: prefix, FIXTURE_WORKERS: 1 }).exited
    expect(again.summary).toMatchObject({ status: 'completed', ids: 500 })
    expect(await pgCounts(table)).toEqual({ total: ROWS, once: ROWS, missed: [], duplicated: [] })
    expect((await cli('status', 'items', ...opts)).out).toMatch(/^job items: completed/)
  })

  it('says clearly when the job is unknown or Redis cannot be reached', async () => {
    const unknown = await cli('status', 'nope', '--redis', REDIS_URL, '--prefix', 'pw-cli-none')
    expect(unknown.code).toBe(2)
    expect(unknown.out).toContain(`No job "nope" in Redis at ${REDIS_URL} under prefix "pw-cli-none".`)
    const down = await cli('status', 'items', '--redis', 'redis://127.0.0.1:1')
    expect(down.code).toBe(2)
    expect(down.out).toMatch(/^Cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/)
    const usage = await cli('frobnicate', 'items', '--redis', REDIS_URL)
    expect(usage.out).toContain('Unknown command "frobnicate".')
  })
})
