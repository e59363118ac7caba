/**
 * Redis runs with the durability Parley claims for queued jobs: an append-only
 * file, fsynced every second. The test reads the server's own report rather
 * than trusting the flags the service manager passed.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { serviceEnv } from './service-env.ts';

const redis = new Redis(serviceEnv('REDIS_URL'), { maxRetriesPerRequest: 1 });

afterAll(async () => {
  await redis.quit();
});

/** Parses the `field:value` lines of an INFO section. */
function infoFields(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

describe('Redis', () => {
  it('has the append-only file enabled', async () => {
    const persistence = infoFields(await redis.info('persistence'));
    expect(persistence.get('aof_enabled')).toBe('1');
  });

  it('fsyncs the append-only file every second', async () => {
    const [, appendfsync] = (await redis.config('GET', 'appendfsync')) as [string, string];
    expect(appendfsync).toBe('everysec');
  });
});
