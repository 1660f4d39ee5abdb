import Redis from 'ioredis'
import { randomBytes } from 'node:crypto'
import { RedisStore } from '../../lib/store/redis.store'
import { storeContract } from '../contract/store.contract'

const REDIS_URL = process.env.PW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

storeContract('RedisStore', async () => {
  const redis = new Redis(REDIS_URL)
  const prefix = `pw-test-${randomBytes(4).toString('hex')}`
  return {
    store: new RedisStore(redis, prefix),
    job: 'items',
    close: async () => {
      const keys = await redis.keys(`{${prefix}:*`)
      if (keys.length) await redis.del(...keys)
      await redis.quit()
    },
  }
})

describe('RedisStore', () => {
  let redis: Redis
  beforeAll(() => (redis = new Redis(REDIS_URL)))
  afterAll(() => redis.quit())

  it('keeps every key of a job under one hash tag', async () => {
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`
    const store = new RedisStore(redis, prefix)
    await store.startRun('users', 'r')
    await store.commit('users', 'h', null, [{ ids: [1], lastId: 1, prev: null }], 10_000)
    const keys = await redis.keys(`*${prefix}*`)
    expect(keys.length).toBeGreaterThan(1)
    for (const key of keys) expect(key.startsWith(`{${prefix}:users}:`)).toBe(true)
    await redis.del(...keys)
  })

  it('runs its scripts again after Redis lost its script cache', async () => {
    const prefix = `pw-test-${randomBytes(4).toString('hex')}`
    const store = new RedisStore(redis, prefix)
    await store.startRun('users', 'r')
    await redis.script('FLUSH')
    expect(await store.claim('users', 'h', 1000)).toEqual({ type: 'load', cursor: null })
    await redis.del(...(await redis.keys(`{${prefix}:*`)))
  })
})
