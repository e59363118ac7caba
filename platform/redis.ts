import { Redis, type RedisOptions } from 'ioredis';

/**
 * Opens a Redis connection. `blocking: true` is for BullMQ workers and
 * blocking reads: such connections must not give up on a command
 * (`maxRetriesPerRequest: null`).
 */
export function connectRedis(url: string, opts: { blocking?: boolean; name?: string } = {}): Redis {
  const options: RedisOptions = {
    maxRetriesPerRequest: opts.blocking ? null : 3,
    enableReadyCheck: true,
    connectionName: opts.name,
    lazyConnect: false,
  };
  return new Redis(url, options);
}
