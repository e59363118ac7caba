import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * Opens a Redis connection. `blocking: true` is for BullMQ workers and
 * blocking reads: such connections must not give up on a command
 * (`maxRetriesPerRequest: null`).
 *
 * `commandTimeoutMs` bounds every command, queued offline or sent, so a hung
 * or dead Redis fails a request in about that long instead of holding it (the
 * API's request path uses it); together with one retry per request it also
 * bounds the offline queue.
 */
export function connectRedis(url: string, opts: { blocking?: boolean; name?: string; commandTimeoutMs?: number } = {}): Redis {
  const options: RedisOptions = {
    maxRetriesPerRequest: opts.blocking ? null : opts.commandTimeoutMs ? 1 : 3,
    enableReadyCheck: true,
    connectionName: opts.name,
    lazyConnect: false,
    ...(opts.commandTimeoutMs && !opts.blocking ? { commandTimeout: opts.commandTimeoutMs } : {}),
  };
  return new Redis(url, options);
}

/** A Lua script run by its SHA (EVALSHA), sent in full once when the server does not know it yet. */
export interface LuaScript {
  run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown>;
}

export function luaScript(src: string): LuaScript {
  const sha = createHash('sha1').update(src).digest('hex');
  return {
    async run(redis, keys, args) {
      try {
        return await redis.evalsha(sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!String((err as Error)?.message).includes('NOSCRIPT')) throw err;
        return redis.eval(src, keys.length, ...keys, ...args);
      }
    },
  };
}
