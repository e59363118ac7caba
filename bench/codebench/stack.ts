/**
 * Parley as shipped, for the code benchmark: api/main.ts and workers/main.ts
 * on a unique key prefix, with the LanceDB folder and uploaded trees under
 * the benchmark's cache (never the repository), and the cleanup that leaves
 * Redis, Postgres and the disk as they were.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startApi } from '../../api/main.ts';
import { connectRedis } from '../../platform/connections/index.ts';
import { startWorkers } from '../../workers/main.ts';
import { cleanup, createMember, parleyEnv, uniquePrefix, type BenchUser } from '../internal/parley.ts';
import { cacheDir } from './libraries.ts';

export interface BenchStack {
  prefix: string;
  env: NodeJS.ProcessEnv;
  dirs: { root: string; lancedb: string; code: string; roots: string };
  api: Awaited<ReturnType<typeof startApi>>;
  workers: Awaited<ReturnType<typeof startWorkers>>;
  user: BenchUser;
  operator: BenchUser;
  base: string;
  request(
    method: string,
    path: string,
    opts?: { body?: unknown; raw?: Buffer; contentType?: string; as?: BenchUser },
  ): Promise<{ status: number; json: any; text: string }>;
  waitJob(id: string, timeoutMs?: number): Promise<any>;
  stop(): Promise<void>;
}

export async function startBenchStack(name: string, extra: Record<string, string> = {}): Promise<BenchStack> {
  const prefix = uniquePrefix(name);
  const root = join(cacheDir(), 'state', prefix);
  const dirs = { root, lancedb: join(root, 'lancedb'), code: join(root, 'code'), roots: join(root, 'roots') };
  mkdirSync(dirs.roots, { recursive: true });
  const env = parleyEnv(prefix, {
    PARLEY_LANCEDB_URI: dirs.lancedb,
    PARLEY_CODE_DIR: dirs.code,
    PARLEY_CODE_ROOTS: dirs.roots,
    PARLEY_RATE_API_WRITE: 'member=100000000,operator=100000000',
    PARLEY_RATE_API_READ: 'member=100000000,operator=100000000',
    // Maintenance runs when the benchmark says so, not on a timer in the middle of a measurement.
    PARLEY_VECTORS_MAINTAIN_INTERVAL_S: '86400',
    // The phases together outlast the default 15-minute access token; the benchmark's users are its own.
    PARLEY_ACCESS_TOKEN_TTL_S: '86400',
    ...extra,
  });
  const api = await startApi(env);
  const workers = await startWorkers(env);
  const user = await createMember(api);
  const opRow = await api.auth.users.create({ username: `bench-op-${prefix.slice(-8)}`, password: `pw-${prefix}`, role: 'operator' });
  const opToken = await api.auth.grants.password({ username: `bench-op-${prefix.slice(-8)}`, password: `pw-${prefix}` }, { ip: '127.0.0.1' });
  const operator: BenchUser = {
    id: opRow.id,
    username: opRow.username,
    token: opToken.access_token,
    actor: (await api.auth.tokens.authenticate(opToken.access_token)).actor,
  };
  const base = `http://127.0.0.1:${api.port}`;
  const request: BenchStack['request'] = async (method, path, opts = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${(opts.as ?? user).token}`,
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : opts.raw ? { 'content-type': opts.contentType ?? 'application/gzip' } : {}),
      },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : opts.raw ? new Uint8Array(opts.raw) : undefined,
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  };
  const waitJob: BenchStack['waitJob'] = async (id, timeoutMs = 3_600_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = await api.jobs.get(id);
      if (row && ['completed', 'failed', 'cancelled'].includes(row.state)) return row;
      if (Date.now() > deadline) throw new Error(`job ${id} not finished after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await workers.stop();
    const redis = connectRedis(env.REDIS_URL ?? 'redis://127.0.0.1:6390');
    await api.db('vector_indexes').where('namespace', 'like', `${prefix}%`).delete();
    await cleanup({ redis, db: api.db, prefixes: [prefix], userIds: [user.id, operator.id] });
    await redis.quit();
    await api.stop();
    rmSync(root, { recursive: true, force: true });
  };
  return { prefix, env, dirs, api, workers, user, operator, base, request, waitJob, stop };
}
