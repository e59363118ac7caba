/**
 * Every process observable on its own: workers serve /healthz, /readyz and
 * /metrics on their own port; the API's /metrics covers the API alone and
 * takes the scrape token; breaker state is one series per state; a model name
 * nobody installed never becomes a label; and one request id follows a job
 * from the API's access log into the worker's log lines for that job.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../platform/config.ts';
import { llmChat } from '../../shared/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { killAll, startProcess } from '../support/processes.ts';
import { makeAgents, makeRoom } from '../discussions/rooms.ts';

const token = `scrape-${randomUUID()}`;
let stack: Stack;
let operator: TestUser;

beforeAll(async () => {
  stack = await startStack({ env: { PARLEY_METRICS_TOKEN: token } });
  operator = await stack.user('operator');
});
afterEach(() => killAll());
afterAll(() => stack?.stop());

const ops = (path: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${stack.workers!.opsPort}${path}`, { headers });

describe('worker ops endpoints', () => {
  it('answers liveness and readiness with Redis, Postgres and its queue workers checked', async () => {
    const live = await ops('/healthz');
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await ops('/readyz');
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body.status).toBe('ready');
    expect(Object.keys(body.checks).sort()).toEqual(['postgres', 'redis', 'workers']);
    for (const c of Object.values(body.checks)) expect(c.ok).toBe(true);
  });

  it('serves /metrics only with the scrape token when one is configured', async () => {
    const none = await ops('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toBe('application/problem+json');
    expect(((await none.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
    expect((await ops('/metrics', { authorization: 'Bearer not-the-token-at-all' })).status).toBe(401);
    const ok = await ops('/metrics', { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await ok.text();
    // Default Node metrics under their standard names, so stock dashboards work.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes'])
      expect(text).toContain(`\n${name}`);
    expect(text).not.toMatch(/parley_worker_|parley_api_/);
  });

  it('reports the breaker as one series per state, 1 for the current one', async () => {
    const text = await (await ops('/metrics', { authorization: `Bearer ${token}` })).text();
    const host = loadConfig(stack.env).ollama.hosts[0]!;
    expect(text).toContain(`parley_ollama_breaker_state{host="${host}",state="closed"} 1`);
    expect(text).toContain(`parley_ollama_breaker_state{host="${host}",state="half_open"} 0`);
    expect(text).toContain(`parley_ollama_breaker_state{host="${host}",state="open"} 0`);
  });

  it('answers other paths 404 and other methods 405, as problem+json', async () => {
    const r = await ops('/nope');
    expect(r.status).toBe(404);
    expect(((await r.json()) as { code: string }).code).toBe('ROUTE_NOT_FOUND');
    const post = await fetch(`http://127.0.0.1:${stack.workers!.opsPort}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('says "stopping" on /readyz while a stopping worker drains its active job', async () => {
    const other = await startStack({ env: { PARLEY_SHUTDOWN_GRACE_MS: '20000' } });
    try {
      const u = await other.user('member');
      const r = await other.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: { holdMs: 2500 } } });
      for (let i = 0; i < 200 && (await other.request('GET', `/v1/jobs/${r.json.id}`, { user: u })).json.state !== 'active'; i++)
        await new Promise((res) => setTimeout(res, 25));
      const stopping = other.workers!.stop();
      const ready = await fetch(`http://127.0.0.1:${other.workers!.opsPort}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { status: string; checks: { workers: { ok: boolean } } };
      expect(body.status).toBe('stopping');
      expect(body.checks.workers.ok).toBe(false);
      await stopping;
      expect((await other.request('GET', `/v1/jobs/${r.json.id}`, { user: u })).json.state).toBe('completed');
    } finally {
      await other.stop();
    }
  });
});

describe('API /metrics', () => {
  it('takes the scrape token in place of a credential, and refuses a wrong one', async () => {
    const ok = await stack.request('GET', '/metrics', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('parley_http_request_duration_seconds');
    const wrong = await stack.request('GET', '/metrics', { headers: { authorization: `Bearer ${token}x` } });
    expect(wrong.status).toBe(401);
  });

  it('reports deployment gauges: oldest queued job age, Redis memory, rooms per status, watched streams', async () => {
    const text = (await stack.request('GET', '/metrics', { user: operator })).text;
    expect(text).toMatch(/^parley_queue_oldest_job_age_seconds\{queue="llm"\} \d/m);
    const used = Number(/^parley_redis_memory_used_bytes (\d+)/m.exec(text)?.[1]);
    expect(used).toBeGreaterThan(100_000);
    expect(text).toMatch(/^parley_discussion_rooms\{status="running"\} \d+/m);
    expect(text).toMatch(/^parley_realtime_watched_streams \d+/m);
  });

  it('counts a login as an issued password grant', async () => {
    const count = async () =>
      Number(/^parley_auth_tokens_issued_total\{grant="password"\} (\d+)/m.exec((await stack.request('GET', '/metrics', { user: operator })).text)?.[1] ?? 0);
    const before = await count();
    const u = await stack.user('member');
    const r = await fetch(`${stack.base}/v1/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: u.username, password: u.password }),
    });
    expect(r.status).toBe(200);
    expect(await count()).toBe(before + 1);
  });
});

describe('counters from zero', () => {
  it('are exported at 0 before their first event, so increase() sees the first one', async () => {
    const worker = await (await ops('/metrics', { authorization: `Bearer ${token}` })).text();
    const host = loadConfig(stack.env).ollama.hosts[0]!;
    for (const queue of ['llm', 'embed', 'code', 'system']) expect(worker).toMatch(new RegExp(`^parley_jobs_stalled_total\\{queue="${queue}"\\} \\d+`, 'm'));
    expect(worker).toMatch(new RegExp(`^parley_ollama_retries_total\\{host="${host}",reason="refused"\\} \\d+`, 'm'));
    expect(worker).toMatch(/^parley_jobs_finished_total\{kind="llm\.chat",outcome="failed"\} \d+/m);
    const api = (await stack.request('GET', '/metrics', { user: operator })).text;
    for (const limiter of ['token-ip', 'jobs-write', 'api-read'])
      expect(api).toMatch(new RegExp(`^parley_rate_limited_total\\{limiter="${limiter}"\\} \\d+`, 'm'));
  });
});

describe('HTTP metrics', () => {
  it('count an event stream the client closed, under its route', async () => {
    const u = await stack.user('member');
    const agents = await makeAgents(stack, u, 2);
    const room = await makeRoom(stack, u, { agentIds: agents.map((a: { id: string }) => a.id) });
    const route = 'route="/v1/discussions/:id/events",status="200"';
    const count = async () =>
      Number(
        new RegExp(`^parley_http_request_duration_seconds_count\\{method="GET",${route.replace(/[/:]/g, (c) => c)}\\} (\\d+)`, 'm').exec(
          (await stack.request('GET', '/metrics', { user: operator })).text,
        )?.[1] ?? 0,
      );
    const before = await count();
    const controller = new AbortController();
    const res = await fetch(`${stack.base}/v1/discussions/${room.id}/events`, { headers: u.auth, signal: controller.signal });
    expect(res.status).toBe(200);
    controller.abort();
    // The server hears the close a moment later.
    for (let i = 0; i < 100 && (await count()) === before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await count()).toBe(before + 1);
  });
});

describe('Ollama hosts', () => {
  it('refuse a URL with credentials at start: it would be a metric label and part of error messages', () => {
    expect(() => loadConfig({ OLLAMA_HOST: 'http://user:s3cret@ollama:11434' })).toThrow(/carries credentials/);
    expect(() => loadConfig({ OLLAMA_HOSTS: 'http://a:11434, http://u:p@b:11434' })).toThrow(/carries credentials/);
    expect(loadConfig({ OLLAMA_HOSTS: 'a:11434, https://b/' }).ollama.hosts).toEqual(['http://a:11434', 'https://b']);
  });
});

describe('bounded labels', () => {
  it('counts a job naming a model nobody installed under model="other", never its name', async () => {
    const model = `made-up-${randomUUID().slice(0, 8)}:1b`;
    const id = randomUUID();
    const input = { model, messages: [{ role: 'user' as const, content: 'hi' }], options: { num_predict: 4 } };
    // As if the payload had sat in Redis while its model was deleted: the API would refuse it today.
    await stack.api.jobs.accept({ id, def: llmChat, input, ownerId: operator.id, priority: 'normal', maxAttempts: 1 });
    const job = await stack.waitForJob(id, operator);
    expect(job.state).toBe('failed');
    const text = await (await ops('/metrics', { authorization: `Bearer ${token}` })).text();
    expect(text).not.toContain(model);
    expect(text).toMatch(/parley_job_queue_wait_seconds_count\{kind="llm.chat",model="other"\} [1-9]/);
  });
});

describe('logs', () => {
  it('one request id appears in the API access log and in the worker log lines of the job it submitted', async () => {
    const env = { ...stack.env, PARLEY_KEY_PREFIX: `t${randomUUID().slice(0, 8)}` };
    const api = await startProcess('api', env);
    const worker = await startProcess('workers', env);
    const requestId = `trace-${randomUUID()}`;
    const res = await fetch(`${api.base}/v1/jobs`, {
      method: 'POST',
      headers: { ...operator.auth, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ kind: 'system.ping', input: { echo: 'traced' } }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const access = await api.waitForLog((l) => l.requestId === requestId);
    expect(access).toMatchObject({ jobId: id, msg: 'POST /v1/jobs 202', req: { method: 'POST', url: '/v1/jobs' }, res: { statusCode: 202 } });
    expect(typeof access.responseTime).toBe('number');
    expect(JSON.stringify(access)).not.toContain(operator.token);
    const finished = await worker.waitForLog((l) => l.msg === 'job finished' && l.jobId === id);
    expect(finished).toMatchObject({ requestId, kind: 'system.ping', state: 'completed', proc: 'workers' });
    expect(worker.lines.find((l) => l.msg === 'job started' && l.jobId === id)).toMatchObject({ requestId });
  });

  it('sets the log level per process kind', async () => {
    expect(loadConfig({ LOG_LEVEL: 'warn', PARLEY_WORKER_LOG_LEVEL: 'debug' }).logLevels).toEqual({ api: 'warn', workers: 'debug' });
    expect(loadConfig({ PARLEY_API_LOG_LEVEL: 'error' }).logLevels).toEqual({ api: 'error', workers: 'info' });
    expect(() => loadConfig({ PARLEY_API_LOG_LEVEL: 'loud' })).toThrow(/PARLEY_API_LOG_LEVEL/);
  });
});

describe('secrets from files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-secrets-'));
  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };

  it('reads <NAME>_FILE, puts DATABASE_PASSWORD into a URL without one, and refuses both forms at once', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://parley@db:5432/parley',
      DATABASE_PASSWORD_FILE: file('pg', 's3cret/with:chars\n'),
      PARLEY_METRICS_TOKEN_FILE: file('tok', `${token}\n`),
    });
    expect(new URL(c.databaseUrl).password).toBe(encodeURIComponent('s3cret/with:chars'));
    expect(c.metricsToken).toBe(token);
    expect(loadConfig({ DATABASE_URL: 'postgres://u:own@db/x', DATABASE_PASSWORD: 'other' }).databaseUrl).toBe('postgres://u:own@db/x');
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_URL_FILE: file('r', 'redis://y') })).toThrow(/REDIS_URL or REDIS_URL_FILE, not both/);
    expect(() => loadConfig({ MONGODB_URL_FILE: join(dir, 'missing') })).toThrow(/MONGODB_URL_FILE: cannot read .*ENOENT/);
  });
});

describe('worker process settings', () => {
  it('reads the queues a worker serves and its ops address, and refuses unknown queues', () => {
    const c = loadConfig({ PARLEY_WORKER_QUEUES: 'llm, embed,llm', PARLEY_WORKER_PORT: '9500', PARLEY_WORKER_HOST: '0.0.0.0' });
    expect(c.workers.queues).toEqual(['llm', 'embed']);
    expect(c.workerOps).toEqual({ port: 9500, host: '0.0.0.0' });
    expect(loadConfig({}).workers.queues).toBeUndefined();
    expect(loadConfig({}).workerOps).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(() => loadConfig({ PARLEY_WORKER_QUEUES: 'llm,gpu' })).toThrow(/PARLEY_WORKER_QUEUES "llm,gpu"/);
  });
});
