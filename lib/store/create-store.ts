import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error'
import type { ResolvedParallelWorkerOptions } from '../interfaces/parallel-worker-options.interface'
import type { CoordinationStore } from './coordination-store.interface'
import { KeyValueStore, type KeyValueStorage } from './key-value.store'
import { MemoryStore } from './memory.store'

const isFn = (o: any, ...names: string[]) => names.every(n => typeof o?.[n] === 'function')

/** Picks the store for the `storage` option (duck-typed, so the user's own ioredis copy works). */
export function createStore(options: ResolvedParallelWorkerOptions): CoordinationStore {
  const storage = options.storage as any
  if (storage === undefined) return new MemoryStore()
  if (isFn(storage, 'claim', 'commit', 'heartbeat', 'complete', 'fail', 'release', 'startRun', 'endRun', 'state')) {
    return storage as CoordinationStore
  }
  if (isFn(storage, 'defineCommand', 'evalsha')) {
    // Loaded here so apps without Redis never load the Redis store.
    const { RedisStore } = require('./redis.store') as typeof import('./redis.store')
    return new RedisStore(storage, options.storageKey)
  }
  if (isFn(storage, 'get', 'set')) return new KeyValueStore(storage as KeyValueStorage, options.storageKey)
  throw new ParallelWorkerConfigError(
    'ParallelWorkerModule: option "storage" must be an ioredis Redis or Cluster client, a CoordinationStore, or an object with get(key) and set(key, value). Omit it for the in-memory store (one host).',
  )
}
