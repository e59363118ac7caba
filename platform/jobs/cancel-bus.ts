/**
 * Cancelling an active job reaches whichever worker process holds it: the API
 * sets a flag key (for a worker that picks the job up later) and publishes the
 * job id on a channel every worker process subscribes to.
 *
 * Channel keys(prefix).cancelChannel, message: the job id.
 * Key keys(prefix).cancelFlag(id) = "1", expiring after a day.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../keys.ts';

export async function requestCancel(redis: Redis, k: Keys, jobId: string): Promise<void> {
  await redis.multi().set(k.cancelFlag(jobId), '1', 'EX', 86_400).publish(k.cancelChannel, jobId).exec();
}

export async function isCancelRequested(redis: Redis, k: Keys, jobId: string): Promise<boolean> {
  return (await redis.exists(k.cancelFlag(jobId))) === 1;
}

export async function clearCancel(redis: Redis, k: Keys, jobId: string): Promise<void> {
  await redis.del(k.cancelFlag(jobId));
}

/** Subscribes on a dedicated connection; returns a function that unsubscribes. */
export async function onCancel(subscriber: Redis, k: Keys, fn: (jobId: string) => void): Promise<() => Promise<void>> {
  const listener = (channel: string, message: string) => {
    if (channel === k.cancelChannel) fn(message);
  };
  subscriber.on('message', listener);
  await subscriber.subscribe(k.cancelChannel);
  return async () => {
    subscriber.off('message', listener);
    await subscriber.unsubscribe(k.cancelChannel);
  };
}
