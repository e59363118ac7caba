/**
 * Which backing service an error says is down, if any: the one place that
 * knows what ioredis, node-postgres, knex and the MongoDB driver throw when
 * their server is unreachable, hung or shutting down. The API answers these
 * with 503, Retry-After and a code that names the service; the worker
 * runtime pauses and hands jobs back instead of spending their attempts.
 */
export type Dependency = 'redis' | 'postgres' | 'mongodb';

/** Postgres SQLSTATEs of an unusable server: connection exceptions (08*), shutdowns and startup (57P0*), too many connections (53300). */
const pgOutage = /^(08\d{3}|57P0[1-4]|53300)$/;

function one(e: Record<string, unknown>): Dependency | undefined {
  const name = String(e.name ?? '');
  const message = String(e.message ?? '');
  const code = String(e.code ?? '');
  if (name === 'KnexTimeoutError' || /Knex: Timeout acquiring a connection/.test(message)) return 'postgres';
  if (pgOutage.test(code) || /^(Connection terminated|Query read timeout|timeout expired|Client has encountered a connection error)/.test(message))
    return 'postgres';
  if (name === 'MaxRetriesPerRequestError' || /^(Command timed out|Connection is closed\.|Stream isn't writeable)/.test(message)) return 'redis';
  if (/^Mongo(ServerSelection|Network|NetworkTimeout|NotConnected)Error$/.test(name)) return 'mongodb';
  return undefined;
}

/**
 * The service an error (or anything in its `cause` chain) blames. A bare
 * ECONNREFUSED/ECONNRESET/ETIMEDOUT is attributed by its port, given the
 * ports of the configured services.
 */
export function dependencyDown(err: unknown, ports: Partial<Record<Dependency, number>> = {}): Dependency | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const rec = e as Record<string, unknown>;
    const found = one(rec);
    if (found) return found;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(String(rec.code)) && typeof rec.port === 'number') {
      for (const [dep, port] of Object.entries(ports)) if (port === rec.port) return dep as Dependency;
    }
    // AggregateError (e.g. a connect that tried IPv4 and IPv6) and the cause chain.
    const inner = Array.isArray(rec.errors) ? rec.errors[0] : undefined;
    e = rec.cause ?? inner;
  }
  return undefined;
}

/** The port a service URL names, for `dependencyDown`. */
export function portOf(url: string, fallback: number): number {
  try {
    const u = new URL(url);
    return u.port ? Number(u.port) : fallback;
  } catch {
    return fallback;
  }
}
