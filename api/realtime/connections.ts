/**
 * Bounds on live connections, shared by SSE and Socket.IO and counted in
 * Redis so every API process sees the same numbers.
 *
 * Per-user leases (PARLEY_MAX_CONNECTIONS_PER_USER): a sorted set per user,
 * keys(prefix).userConnections(uid), of connection ids scored by the time
 * their lease runs out. A connection takes a lease when it opens, renews it
 * every third of the lease while open, and gives it back when it closes; a
 * process that dies leaves leases that simply run out.
 *
 *   ACQUIRE  KEYS[1] the user's set
 *            ARGV[1] now (ms)  ARGV[2] lease (ms)  ARGV[3] connection id  ARGV[4] the cap
 *            drops run-out leases, then adds this one unless the cap is reached;
 *            returns 1 (taken) or 0 (at the cap); the set expires with its newest lease
 *   RENEW    KEYS[1]; ARGV[1] now  ARGV[2] lease  ARGV[3] id: moves the lease on if it is still held
 *
 * Fixed-window counters (Socket.IO handshakes per IP, subscribes per user):
 * keys(prefix).socketRate(limiter, subject), INCR and, on the first hit of a
 * window, PEXPIRE; over the limit is refused with the window's remaining time.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { luaScript } from '../../platform/connections/index.ts';

const ACQUIRE = luaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

const RENEW = luaScript(`
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`);

const HIT = luaScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { n, redis.call('PTTL', KEYS[1]) }
`);

export interface Lease {
  /** Gives the lease back (idempotent). */
  release(): void;
}

export interface ConnectionLimits {
  /** Leases one user may hold at once. */
  maxPerUser: number;
  /** How long a lease lives without renewal. @defaultValue 60 s */
  leaseMs?: number;
}

export function connectionRegistry(redis: Redis, keyOf: (userId: string) => string, limits: ConnectionLimits) {
  const leaseMs = limits.leaseMs ?? 60_000;
  return {
    /** A lease for one more live connection of `userId`, or undefined at the cap. */
    async acquire(userId: string): Promise<Lease | undefined> {
      const key = keyOf(userId);
      const id = randomUUID();
      const taken = Number(await ACQUIRE.run(redis, [key], [String(Date.now()), String(leaseMs), id, String(limits.maxPerUser)]));
      if (taken !== 1) return undefined;
      const renew = setInterval(
        () => {
          RENEW.run(redis, [key], [String(Date.now()), String(leaseMs), id]).catch(() => {});
        },
        Math.max(1000, Math.floor(leaseMs / 3)),
      );
      renew.unref();
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          clearInterval(renew);
          redis.zrem(key, id).catch(() => {});
        },
      };
    },
    /** Leases the user holds now (run-out ones not counted). */
    async count(userId: string): Promise<number> {
      return redis.zcount(keyOf(userId), String(Date.now()), '+inf');
    },
  };
}
export type ConnectionRegistry = ReturnType<typeof connectionRegistry>;

/** One hit on a fixed-window counter: whether it is within `limit`, and the seconds until the window resets. */
export async function hitWindow(redis: Redis, key: string, limit: number, windowMs: number): Promise<{ ok: boolean; retryAfterS: number }> {
  const [n, ttl] = (await HIT.run(redis, [key], [String(windowMs)])) as [number, number];
  return { ok: Number(n) <= limit, retryAfterS: Math.max(1, Math.ceil((Number(ttl) > 0 ? Number(ttl) : windowMs) / 1000)) };
}
