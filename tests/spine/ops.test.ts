import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let operator: TestUser;

beforeAll(async () => {
  stack = await startStack();
  operator = await stack.user('operator');
});
afterAll(() => stack?.stop());

describe('operations endpoints', () => {
  it('answers liveness without credentials', async () => {
    const r = await stack.request('GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'ok' });
  });

  it('reports Redis, Postgres and Ollama in readiness, and a deep check runs a job', async () => {
    const r = await stack.request('GET', '/readyz');
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('ready');
    for (const s of ['redis', 'postgres', 'ollama']) expect(r.json.checks[s].ok).toBe(true);
    const deep = await stack.request('GET', '/readyz?deep=1', { user: operator });
    expect(deep.status).toBe(200);
    expect(deep.json.checks.pipeline.ok).toBe(true);
  });

  it('reports not ready when the deep probe cannot complete', async () => {
    const idle = await startStack({ workers: false });
    try {
      const r = await idle.request('GET', '/readyz?deep=1', { user: await idle.user('operator') });
      expect(r.status).toBe(503);
      expect(r.json.status).toBe('degraded');
      expect(r.json.checks.pipeline.ok).toBe(false);
      expect(r.json.checks.redis.ok).toBe(true);
    } finally {
      await idle.stop();
    }
  });

  it('exposes the API metrics on its /metrics and the worker metrics on the worker port, after jobs ran', async () => {
    const chat = await stack.request('POST', '/v1/jobs', {
      user: operator,
      body: { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 8 } } },
    });
    await stack.waitForJob(chat.json.id, operator);
    const api = await stack.request('GET', '/metrics', { user: operator });
    expect(api.status).toBe(200);
    for (const series of [
      'parley_http_request_duration_seconds_bucket',
      'parley_queue_jobs{queue="llm",state="completed"}',
      'parley_jobs_submitted_total',
      'process_cpu_user_seconds_total',
    ])
      expect(api.text).toContain(series);
    // The API's /metrics covers the API alone: job execution is the workers' to report.
    expect(api.text).not.toContain('parley_job_duration_seconds');
    const worker = await fetch(`http://127.0.0.1:${stack.workers!.opsPort}/metrics`);
    expect(worker.status).toBe(200);
    const text = await worker.text();
    for (const series of [
      'parley_job_duration_seconds_count{kind="llm.chat",outcome="completed"}',
      'parley_job_queue_wait_seconds_count',
      'parley_llm_time_to_first_token_seconds_count',
      'parley_llm_tokens_per_second_count',
      'parley_jobs_active',
      'nodejs_heap_size_used_bytes',
    ])
      expect(text).toContain(series);
    expect(text).not.toContain('parley_http_request_duration_seconds');
  });

  it('keeps /metrics from anonymous callers', async () => {
    const r = await stack.request('GET', '/metrics');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('serves an OpenAPI 3.1 document generated from the contracts, and Swagger UI', async () => {
    const r = await stack.request('GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.json.openapi).toBe('3.1.0');
    for (const p of ['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/retry', '/v1/jobs/{id}/events', '/v1/auth/token', '/readyz'])
      expect(Object.keys(r.json.paths)).toContain(p);
    expect(r.json.components.schemas.LlmChatInput.properties.messages).toBeTruthy();
    const post = r.json.paths['/v1/jobs'].post;
    expect(post.requestBody.content['application/json'].schema).toBeTruthy();
    const docs = await fetch(`${stack.base}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
    expect((await fetch(`${stack.base}/docs/swagger-ui.css`)).status).toBe(200);
    // Only the page and its assets: another path under /docs is not the page again.
    const stray = await stack.request('GET', '/docs/no/such/page');
    expect(stray.status).toBe(404);
    expect(stray.json.code).toBe('ROUTE_NOT_FOUND');
  });

  it('answers unknown routes with 404 problem+json and no framework fingerprints', async () => {
    const r = await stack.request('GET', '/nope');
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('ROUTE_NOT_FOUND');
    expect(r.headers.get('x-powered-by')).toBeNull();
  });
});
