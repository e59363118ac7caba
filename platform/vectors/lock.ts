/**
 * Writes to one LanceDB table are serialised: a merge, a delete and an
 * `optimize()` each commit a new table version, and two writers racing on
 * the same fragments make Lance retry or fail the later commit. Within a
 * process a promise chain per table orders them; across processes a Redis
 * lock does.
 *
 * Redis protocol, per table:
 *   KEYS[1] = `<prefix>:lock:vectors:<table>` (platform/keys.ts), value = the holder's random id,
 *   PX = ttlMs, renewed every ttlMs / 3 while the holder runs (compare then
 *   PEXPIRE), released with compare-then-DEL. A holder that dies stops
 *   renewing, so its lock ends within ttlMs.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

export type TableLock = <T>(table: string, fn: () => Promise<T>) => Promise<T>;

/** Orders writes to each table within this process. */
export function processLock(): TableLock {
  const tails = new Map<string, Promise<unknown>>();
  return async (table, fn) => {
    const prev = tails.get(table) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => {},
      () => {},
    );
    tails.set(table, tail);
    try {
      return await run;
    } finally {
      if (tails.get(table) === tail) tails.delete(table);
    }
  };
}

const renewIfHolder = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const releaseIfHolder = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface RedisLockOptions {
  /** @defaultValue 30 000 ms: an optimize of a large table runs for seconds, and the lock is renewed meanwhile. */
  ttlMs?: number;
  /** Give up waiting after this long. @defaultValue 10 min */
  waitMs?: number;
}

/** Orders writes to each table across every process of the deployment (and within this one). `keyOf` names a table's lock key. */
export function redisLock(redis: Redis, keyOf: (table: string) => string, opts: RedisLockOptions = {}): TableLock {
  const ttlMs = opts.ttlMs ?? 30_000;
  const waitMs = opts.waitMs ?? 600_000;
  const local = processLock();
  return (table, fn) =>
    local(table, async () => {
      const key = keyOf(table);
      const holder = randomUUID();
      const deadline = Date.now() + waitMs;
      let delay = 5;
      while ((await redis.set(key, holder, 'PX', ttlMs, 'NX')) !== 'OK') {
        if (Date.now() > deadline) throw new Error(`timed out after ${waitMs} ms waiting for the write lock on vector table ${table}`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 200);
      }
      const renew = setInterval(
        () => {
          redis.eval(renewIfHolder, 1, key, holder, ttlMs).catch(() => {});
        },
        Math.max(100, Math.floor(ttlMs / 3)),
      );
      try {
        return await fn();
      } finally {
        clearInterval(renew);
        await redis.eval(releaseIfHolder, 1, key, holder).catch(() => {});
      }
    });
}
