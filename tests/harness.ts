/**
 * Test harness: a real API and real workers in this process, on the real
 * services, isolated by a unique Redis key prefix (queues, streams, locks)
 * and unique usernames. `stack.user(role)` makes a user and logs it in.
 */
import { randomUUID } from 'node:crypto';
import { startApi } from '../api/main.ts';
import type { Role } from '../api/auth/permissions.ts';
import { startWorkers } from '../workers/main.ts';
import type { QueueName } from '../shared/index.ts';

export interface TestUser {
  id: string;
  username: string;
  password: string;
  role: Role;
  token: string;
  refreshToken: string;
  auth: { authorization: string };
}

export type Stack = Awaited<ReturnType<typeof startStack>>;

export async function startStack(opts: { workers?: boolean | QueueName[]; env?: Record<string, string> } = {}) {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // Generous request-path bounds: on a loaded test machine a stalled event loop must not read as an outage.
    // The chaos suite sets the production defaults back explicitly.
    PARLEY_API_REDIS_TIMEOUT_MS: '5000',
    PARLEY_API_DB_QUERY_TIMEOUT_MS: '15000',
    PARLEY_API_DB_CONNECT_TIMEOUT_MS: '5000',
    PARLEY_KEY_PREFIX: prefix,
    PORT: '0',
    PARLEY_WORKER_PORT: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    ...opts.env,
  };
  delete env.PARLEY_BOOTSTRAP_ADMIN_USER;
  delete env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD;
  // Transcripts go to a test database next to the configured one (parley → parley_test), never the development data.
  if (env.MONGODB_URL && !opts.env?.MONGODB_URL) env.MONGODB_URL = testMongoUrl(env.MONGODB_URL);
  const api = await startApi(env);
  const workers = opts.workers === false ? undefined : await startWorkers(env, { queues: Array.isArray(opts.workers) ? opts.workers : undefined });
  const base = `http://127.0.0.1:${api.port}`;

  async function user(role: Role = 'member'): Promise<TestUser> {
    const username = `${role}-${randomUUID().slice(0, 8)}`;
    const password = `pw-${randomUUID()}`;
    const row = await api.auth.users.create({ username, password, role });
    const t = await api.auth.grants.password({ username, password }, { ip: '127.0.0.1' });
    return { id: row.id, username, password, role, token: t.access_token, refreshToken: t.refresh_token, auth: { authorization: `Bearer ${t.access_token}` } };
  }

  async function request(method: string, path: string, opts: { user?: TestUser; body?: unknown; headers?: Record<string, string> } = {}) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(opts.user ? opts.user.auth : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** Polls the job record until it is terminal (or `timeoutMs` passes). */
  async function waitForJob(id: string, u: TestUser, timeoutMs = 90_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await request('GET', `/v1/jobs/${id}`, { user: u });
      if (r.json && ['completed', 'failed', 'cancelled'].includes(r.json.state)) return r.json;
      if (Date.now() > deadline) throw new Error(`job ${id} not terminal after ${timeoutMs} ms: ${r.text}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async function stop() {
    await workers?.stop();
    await api.stop();
  }

  return { api, workers, base, prefix, env, user, request, waitForJob, stop };
}

function testMongoUrl(url: string): string {
  const u = new URL(url);
  const db = u.pathname.replace(/^\//, '') || 'parley';
  if (!db.endsWith('_test')) u.pathname = `/${db}_test`;
  return u.toString();
}

/**
 * Reads an SSE stream into events until `finished` or the timeout. `onOpen` runs when the answer's
 * headers arrive: for a 200, the server is subscribed by then (it subscribes before the headers go out).
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  opts: { timeoutMs?: number; stopAfter?: (e: { id: number; event: string; data: any }) => boolean; onOpen?: (status: number) => void } = {},
) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? 90_000);
  const events: { id: number; event: string; data: any }[] = [];
  try {
    const res = await fetch(url, { headers, signal: controller.signal });
    opts.onOpen?.(res.status);
    if (res.status !== 200 || !res.body) return { status: res.status, events, body: await res.text() };
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let idx: number;
      while ((idx = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, idx);
        buf = buf.slice(idx + 2);
        const f: Record<string, string> = {};
        for (const line of frame.split('\n')) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(':');
          if (i > 0) f[line.slice(0, i)] = line.slice(i + 1).trimStart();
        }
        if (!f.event) continue;
        const e = { id: Number(f.id), event: f.event, data: JSON.parse(f.data ?? 'null') };
        events.push(e);
        if (e.event === 'finished' || opts.stopAfter?.(e)) {
          controller.abort();
          return { status: 200, events };
        }
      }
    }
    return { status: 200, events };
  } catch (err) {
    if ((err as Error).name === 'AbortError') return { status: 200, events };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
