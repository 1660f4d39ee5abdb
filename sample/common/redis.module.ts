import { Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';

/** Injection token of the Redis client, or `null` when `REDIS_URL` is not set. */
export const REDIS = Symbol('REDIS');

/**
 * One ioredis client per process when `REDIS_URL` is set. The parallel
 * worker module never closes a client it was given, so this module does,
 * after the module has drained: otherwise the open socket would keep the
 * process alive after `app.close()`.
 */
@Module({
  providers: [
    {
      provide: REDIS,
      useFactory: (): Redis | null =>
        process.env.REDIS_URL ? new Redis(process.env.REDIS_URL) : null,
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis | null) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis?.quit();
  }
}
