/**
 * A periodic task that runs in one process at a time across a deployment.
 *
 * Each round, the process tries to take or renew the lock key (SET NX PX,
 * then a compare-and-expire for the holder); only the holder runs the round.
 * The lock lives three intervals, so a dead holder is replaced within three
 * rounds. Rounds never overlap; a failed round is logged and the loop goes on.
 *
 * Key: `lockKey` = the holder's random id, PX = 3 × intervalMs.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/index.ts';

const renewIfHolder = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const releaseIfHolder = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface SingletonLoop<T> {
  /** Runs one round now if this process holds (or takes) the lock; `undefined` if another process holds it. */
  runOnce(): Promise<T | undefined>;
  /** Stops the loop, waits for a round in progress and releases the lock. */
  stop(): Promise<void>;
}

export function startSingletonLoop<T>(opts: {
  redis: Redis;
  lockKey: string;
  intervalMs: number;
  log: Logger;
  name: string;
  round: () => Promise<T>;
}): SingletonLoop<T> {
  const { redis, lockKey, intervalMs, log } = opts;
  const holder = randomUUID();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;

  const holdLock = async (): Promise<boolean> => {
    const ttl = intervalMs * 3;
    if ((await redis.set(lockKey, holder, 'PX', ttl, 'NX')) === 'OK') return true;
    return (await redis.eval(renewIfHolder, 1, lockKey, holder, ttl)) === 1;
  };

  const runOnce = async (): Promise<T | undefined> => ((await holdLock()) ? opts.round() : undefined);

  const loop = () => {
    if (stopped) return;
    running = runOnce()
      .catch((err: unknown) => log.warn({ err }, `${opts.name} round failed`))
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(loop, intervalMs);
      });
  };
  timer = setTimeout(loop, Math.min(intervalMs, 1000));

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await redis.eval(releaseIfHolder, 1, lockKey, holder);
    },
  };
}
