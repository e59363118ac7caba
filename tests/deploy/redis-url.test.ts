/** REDIS_URL names a single Redis or, with the `+cluster` scheme, a Redis Cluster (platform/redis.ts). */
import { describe, expect, it } from 'vitest';
import { connectRedis, isClusterUrl } from '../../platform/connections/index.ts';

describe('REDIS_URL', () => {
  it('names a cluster with redis+cluster:// or rediss+cluster:// and one or more seed nodes', () => {
    expect(isClusterUrl('redis+cluster://127.0.0.1:7000')).toBe(true);
    expect(isClusterUrl('rediss+cluster://user:p%40ss@10.0.0.1:6379,10.0.0.2:6379/')).toBe(true);
    expect(isClusterUrl('redis://127.0.0.1:6390')).toBe(false);
    expect(isClusterUrl('rediss://:secret@cache.internal:6380/0')).toBe(false);
  });

  it('connects a Cluster client for a cluster URL, with the credentials and seeds it names', () => {
    const c = connectRedis('redis+cluster://alice:p%40ss@127.0.0.1:1,127.0.0.1:2') as unknown as {
      isCluster: boolean;
      startupNodes: { host: string; port: number }[];
      options: { redisOptions: { username?: string; password?: string } };
      disconnect(): void;
    };
    try {
      expect(c.isCluster).toBe(true);
      expect(c.startupNodes).toEqual([
        { host: '127.0.0.1', port: 1 },
        { host: '127.0.0.1', port: 2 },
      ]);
      expect(c.options.redisOptions).toMatchObject({ username: 'alice', password: 'p@ss' });
    } finally {
      c.disconnect();
    }
  });

  it('refuses a cluster seed without a port', () => {
    expect(() => connectRedis('redis+cluster://127.0.0.1')).toThrow(/needs host:port/);
  });
});
