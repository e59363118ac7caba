/**
 * Parley's side of the benchmarks: its environment on a unique key prefix,
 * the real composition roots (api/main.ts startApi, workers/main.ts
 * startWorkers), a member user, and the cleanup that leaves Redis and
 * Postgres as they were.
 *
 * Nothing here re-composes the product: the benches run what `npm run api`
 * and `npm run workers` run, so they follow it as it changes. Two probes
 * reach inside a WorkerHost, whose fields are private: the system.ping
 * handler is wrapped to time its entry (`onHandlerStart`), and the BullMQ
 * Worker objects are read to hear their `active` event. Both only observe.
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { startApi } from '../../api/main.ts';
import type { Actor } from '../../api/auth/permissions.ts';
import type { Route } from '../../api/http/route.ts';
import { loadConfig } from '../../platform/config.ts';
import type { Db } from '../../platform/connections/index.ts';
import { startWorkers } from '../../workers/main.ts';
import type { WorkerHost } from '../../workers/runtime/host.ts';

/** A prefix no one else uses: `bench-<name>-<8 hex>`. */
export function uniquePrefix(name: string): string {
  return `bench-${name}-${randomUUID().slice(0, 8)}`;
}

/**
 * The environment a Parley process gets in a benchmark. Rate limits are
 * raised far above what one benchmark user sends, so the limiter (when it is
 * mounted) counts every request, its Redis round trip included, but never
 * refuses one.
 */
export function parleyEnv(prefix: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PARLEY_KEY_PREFIX: prefix,
    PORT: '0',
    PARLEY_WORKER_PORT: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    PARLEY_RATE_JOBS_WRITE: 'member=100000000',
    PARLEY_RATE_JOBS_READ: 'member=100000000',
    // One bench user plays every client: its connection and Socket.IO caps are raised like its rate limits
    // (still counted, never refused).
    PARLEY_MAX_CONNECTIONS_PER_USER: '10000',
    PARLEY_RATE_SOCKET_HANDSHAKES_PER_IP: '100000000',
    PARLEY_RATE_SOCKET_SUBSCRIBES: '100000000',
    ...extra,
  };
  delete env.PARLEY_BOOTSTRAP_ADMIN_USER;
  delete env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD;
  return env;
}

export function configOf(env: NodeJS.ProcessEnv) {
  return loadConfig(env);
}

export type ParleyApi = Awaited<ReturnType<typeof startApi>>;

export interface BenchUser {
  id: string;
  username: string;
  token: string;
  actor: Actor;
}

/** A member user, made and logged in through the API's auth service as tests/harness.ts does. */
export async function createMember(api: ParleyApi): Promise<BenchUser> {
  const username = `bench-${randomUUID().slice(0, 8)}`;
  const password = `pw-${randomUUID()}`;
  const row = await api.auth.users.create({ username, password, role: 'member' });
  const t = await api.auth.grants.password({ username, password }, { ip: '127.0.0.1' });
  const { actor } = await api.auth.tokens.authenticate(t.access_token);
  return { id: row.id, username, token: t.access_token, actor };
}

/**
 * POST /v1/jobs without HTTP: the route declaration's own `handle`, which
 * calls api/domain/jobs.ts submitJob with the deps api/main.ts built
 * (validation, admission, the Postgres record, BullMQ add with Parley's
 * options). Authentication and the HTTP edge are bench/submit-http.ts's
 * subject. Resolves to the job id.
 */
export function submitterOf(api: ParleyApi, user: BenchUser): (body: { kind: string; input: unknown }) => Promise<string> {
  const route = api.routes.find((r: Route) => r.method === 'post' && r.path === '/v1/jobs');
  if (!route) throw new Error('POST /v1/jobs is not among the API routes');
  return async (raw) => {
    const body = route.body ? route.body.parse(raw) : raw;
    const res = await route.handle({
      body,
      query: undefined,
      params: undefined,
      actor: user.actor,
      requestId: randomUUID(),
      ip: '127.0.0.1',
      userAgent: 'parley-bench',
      headers: {},
    });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
    return (res.body as { id: string }).id;
  };
}

export type ParleyWorkers = Awaited<ReturnType<typeof startWorkers>>;

/**
 * workers/main.ts for the `system` queue only. `onHandlerStart` runs as the
 * system.ping handler is entered, before the real one.
 */
export async function startParleyWorkers(
  env: NodeJS.ProcessEnv,
  opts: { onHandlerStart?: (jobId: string, echo: string | undefined) => void } = {},
): Promise<ParleyWorkers> {
  const workers = await startWorkers(env, { queues: ['system'] });
  const onStart = opts.onHandlerStart;
  if (onStart) {
    type Ping = (input: { echo?: string }, ctx: { jobId: string }) => Promise<unknown>;
    const handlers = (workers.host as unknown as { deps: { handlers: Record<string, Ping> } }).deps.handlers;
    const ping = handlers['system.ping'];
    if (!ping) throw new Error('no system.ping handler in the worker host');
    handlers['system.ping'] = (input, ctx) => {
      onStart(ctx.jobId, input.echo);
      return ping(input, ctx);
    };
  }
  return workers;
}

type JobListener = (job: { id?: string; data: unknown }) => void;

/**
 * The BullMQ Workers inside a WorkerHost, to hear `active` (a job picked,
 * before Parley's bookkeeping) and `completed` (its moveToFinished answered).
 */
export function bullWorkersOf(host: WorkerHost): { on(event: 'active' | 'completed', fn: JobListener): void }[] {
  return (host as unknown as { workers: { on(event: 'active' | 'completed', fn: JobListener): void }[] }).workers;
}

/** Waits until no job of `queue` is waiting, prioritized, delayed or active; returns performance.now() then. */
export async function drained(queue: Queue, opts: { pollMs?: number; timeoutMs?: number } = {}): Promise<number> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    if (Object.values(c).every((n) => n === 0)) return performance.now();
    if (Date.now() > deadline) throw new Error(`queue ${queue.name} not drained after ${timeoutMs} ms: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 5));
  }
}

/**
 * Removes what a benchmark wrote: its queues (obliterated), every Redis key
 * under each `prefix:` (streams, locks, rate-limit buckets, budgets,
 * metrics), the users' jobs and usage rows, and the users (sessions and
 * refresh tokens cascade). Audit rows stay: that table is append-only by
 * design.
 */
export async function cleanup(deps: { redis: Redis; db?: Db; prefixes: string[]; userIds?: string[]; queues?: Queue[] }): Promise<void> {
  for (const q of deps.queues ?? []) await q.obliterate({ force: true }).catch(() => {});
  for (const prefix of deps.prefixes) {
    let cursor = '0';
    do {
      const [next, found] = await deps.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (found.length) await deps.redis.unlink(...found);
    } while (cursor !== '0');
  }
  const db = deps.db;
  if (db && deps.userIds?.length) {
    // Tables that reference users, other than the ones that cascade, as the schema stands.
    const refs = (await db.raw(
      `select distinct cl.relname as t, att.attname as c
         from pg_constraint con
         join pg_class cl on cl.oid = con.conrelid
         join pg_attribute att on att.attrelid = con.conrelid and att.attnum = any(con.conkey)
        where con.contype = 'f' and con.confrelid = 'users'::regclass and con.confdeltype <> 'c'`,
    )) as { rows: { t: string; c: string }[] };
    for (const { t, c } of refs.rows) await db(t).whereIn(c, deps.userIds).delete();
    // Rooms first: their seats hold agents back (RESTRICT), and the cascade from
    // users reaches agents before it reaches the rooms' seats.
    await db('discussions').whereIn('owner_id', deps.userIds).delete();
    await db('users').whereIn('id', deps.userIds).delete();
  }
}

/**
 * Runs `teardown` once, whether the script ends, fails or is interrupted
 * (SIGINT, SIGTERM, or its stdout closing under `| head`), so an
 * interrupted benchmark still leaves Redis and Postgres clean.
 */
export function teardownOnExit(teardown: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const run = () => (done ??= teardown().catch((err: unknown) => console.error('cleanup failed:', err)));
  const interrupted = (signal: string) => {
    console.error(`${signal}: cleaning up`);
    void run().finally(() => process.exit(130));
  };
  const onInt = () => interrupted('SIGINT');
  const onTerm = () => interrupted('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  process.stdout.on('error', () => {}); // EPIPE: keep going, so the teardown still runs
  return async () => {
    await run();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
}
