import { createHash } from 'node:crypto';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';

/**
 * Opens a Redis connection. `blocking: true` is for BullMQ workers and
 * blocking reads: such connections must not give up on a command
 * (`maxRetriesPerRequest: null`).
 *
 * A Redis Cluster is named by its URL: `redis+cluster://[user:pass@]host:port[,host:port...]`
 * (`rediss+cluster://` for TLS) lists one or more seed nodes, and the client
 * discovers the rest. ioredis' `Cluster` has the command surface of `Redis`
 * (commands routed by key slot, pub/sub, scripts, pipelines within one slot),
 * so it is returned under the `Redis` type and callers do not change; the key
 * layout that keeps every multi-key operation in one slot is in keys.ts.
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
  const cluster = parseClusterUrl(url);
  if (cluster) {
    return new Cluster(cluster.nodes, {
      redisOptions: { ...options, username: cluster.username, password: cluster.password, tls: cluster.tls ? {} : undefined },
      enableReadyCheck: true,
      // A command to a slot that moved is retried on its new node; a node restart is ridden out.
      maxRedirections: 16,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
    }) as unknown as Redis;
  }
  return new Redis(url, options);
}

/**
 * Resolves once the connection is ready. Subscriber connections wait for it before their first
 * SUBSCRIBE: a cluster client picks the node it subscribes on only once it knows the cluster, and a
 * connection closed before then would fail the queued subscribe (an unhandled rejection inside a library).
 */
export function whenReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => (redis.off('end', onEnd), resolve());
    const onEnd = () => (redis.off('ready', onReady), reject(new Error('Redis connection closed before it was ready')));
    redis.once('ready', onReady);
    redis.once('end', onEnd);
  });
}

/** True when `url` names a Redis Cluster (see connectRedis). */
export function isClusterUrl(url: string): boolean {
  return parseClusterUrl(url) !== undefined;
}

function parseClusterUrl(url: string): { nodes: ClusterNode[]; username?: string; password?: string; tls: boolean } | undefined {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url.trim());
  if (!m) return undefined;
  const [, scheme, auth, hosts] = m as unknown as [string, string, string | undefined, string];
  const [user, pass] = auth ? (auth.includes(':') ? auth.split(/:(.*)/s, 2) : [undefined, auth]) : [undefined, undefined];
  const nodes = hosts.split(',').map((h) => {
    const i = h.lastIndexOf(':');
    if (i <= 0) throw new Error(`invalid Redis Cluster URL: "${h}" needs host:port`);
    return { host: h.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(h.slice(i + 1)) };
  });
  return { nodes, username: user ? decodeURIComponent(user) : undefined, password: pass ? decodeURIComponent(pass) : undefined, tls: scheme === 'rediss' };
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
