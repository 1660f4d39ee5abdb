export class RedisStore { constructor(..._a: unknown[]) { throw new Error('The Redis store is not available yet') } }
