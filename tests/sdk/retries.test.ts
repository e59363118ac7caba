/**
 * Retries through a fault-injecting proxy in front of the real API:
 * backoff on 503 and 429 honouring Retry-After, no retry where it would not
 * help or could repeat an action, and a submit whose answer was lost, sent
 * again with the same Idempotency-Key, making exactly one job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, ParleyError, type RetryContext } from '../../sdk/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';

let stack: Stack;
let proxy: FaultProxy;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: ['system'] });
  proxy = await startFaultProxy(stack.base);
  user = await stack.user('member');
});
afterAll(async () => {
  await proxy?.close();
  await stack?.stop();
});

const problem = (status: number, code: string) => ({ type: 'about:blank', title: code, status, code });
const on = (method: string, path: string) => (m: string, p: string) => m === method && p === path;
const client = (retries: RetryContext[], opts: { retries?: number; maxRetryAfterMs?: number } = {}) =>
  createClient({ baseUrl: proxy.url, auth: user.token, retry: { baseDelayMs: 20, ...opts }, interceptors: [{ onRetry: (r) => void retries.push(r) }] });
const caught = (p: Promise<unknown>) =>
  p.then(
    () => Promise.reject(new Error('expected a failure')),
    (e: unknown) => e as ParleyError,
  );

describe('retries', () => {
  it('retries 503s, waiting at least what Retry-After says', async () => {
    proxy.inject(on('GET', '/v1/auth/me'), { kind: 'respond', status: 503, headers: { 'retry-after': '1' }, body: problem(503, 'SERVICE_UNAVAILABLE') }, 2);
    const retries: RetryContext[] = [];
    const before = proxy.log.length;
    expect((await client(retries).auth.me()).id).toBe(user.id);
    expect(proxy.log.length - before).toBe(3);
    expect(retries.map((r) => [r.attempt, r.reason])).toEqual([
      [2, 503],
      [3, 503],
    ]);
    for (const r of retries) expect(r.delayMs).toBeGreaterThanOrEqual(1000);
  });

  it('retries a 429 RATE_LIMITED, but not a 429 BUDGET_EXHAUSTED', async () => {
    proxy.inject(on('GET', '/v1/usage'), { kind: 'respond', status: 429, headers: { 'retry-after': '0' }, body: problem(429, 'RATE_LIMITED') });
    const retries: RetryContext[] = [];
    expect((await client(retries).usage.get()).totals).toBeDefined();
    expect(retries.map((r) => r.reason)).toEqual([429]);

    proxy.inject(on('GET', '/v1/usage'), { kind: 'respond', status: 429, headers: { 'retry-after': '0' }, body: problem(429, 'BUDGET_EXHAUSTED') });
    const none: RetryContext[] = [];
    const err = await caught(client(none).usage.get());
    expect(err).toMatchObject({ code: 'BUDGET_EXHAUSTED', status: 429, retryAfterSeconds: 0 });
    expect(none).toEqual([]);
  });

  it('gives up after its retries, and at once when Retry-After is beyond what it waits', async () => {
    proxy.inject(on('GET', '/v1/auth/me'), { kind: 'respond', status: 503, body: problem(503, 'SERVICE_UNAVAILABLE') }, 3);
    const retries: RetryContext[] = [];
    expect((await caught(client(retries, { retries: 2 }).auth.me())).code).toBe('SERVICE_UNAVAILABLE');
    expect(retries).toHaveLength(2);

    proxy.inject(on('GET', '/v1/auth/me'), { kind: 'respond', status: 429, headers: { 'retry-after': '120' }, body: problem(429, 'RATE_LIMITED') });
    const none: RetryContext[] = [];
    expect(await caught(client(none, { maxRetryAfterMs: 5000 }).auth.me())).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 120 });
    expect(none).toEqual([]);
  });

  it('retries a GET after a connection reset', async () => {
    proxy.inject(on('GET', '/v1/auth/me'), { kind: 'reset' });
    const retries: RetryContext[] = [];
    expect((await client(retries).auth.me()).id).toBe(user.id);
    expect(retries.map((r) => r.reason)).toEqual(['network']);
  });

  it('does not repeat a POST without an idempotency key after a connection failure', async () => {
    proxy.inject(on('POST', '/v1/agents'), { kind: 'lose-response' });
    const retries: RetryContext[] = [];
    const err = await caught(client(retries).agents.create({ name: 'Once', persona: 'Only once.' }));
    expect(err.code).toBe('NETWORK_ERROR');
    expect(retries).toEqual([]);
  });

  it('sends a submit again with the same Idempotency-Key after its answer was lost: one job', async () => {
    const fresh = await stack.user('member');
    proxy.inject(on('POST', '/v1/jobs'), { kind: 'lose-response' });
    const retries: RetryContext[] = [];
    const c = createClient({ baseUrl: proxy.url, auth: fresh.token, retry: { baseDelayMs: 20 }, interceptors: [{ onRetry: (r) => void retries.push(r) }] });
    const before = proxy.log.length;
    const job = await c.jobs.submit('system.ping', { echo: 'exactly once' });
    const sent = proxy.log.slice(before).filter((l) => l.method === 'POST' && l.path === '/v1/jobs');
    expect(sent.map((l) => l.fault)).toEqual(['lose-response', undefined]);
    expect(sent[0]!.headers['idempotency-key']).toBeTruthy();
    expect(sent[1]!.headers['idempotency-key']).toBe(sent[0]!.headers['idempotency-key']);
    expect(retries.map((r) => r.reason)).toEqual(['network']);
    // The first attempt made the job; the second was answered with it.
    expect(job.replayed).toBe(true);
    const all = [];
    for await (const j of c.jobs.list()) all.push(j.id);
    expect(all).toEqual([job.id]);
  });

  it('does not send a POST without an Idempotency-Key again after a 503 REQUEST_TIMEOUT, whose outcome is unknown (regression: every 503 was retried, so a slow POST ran twice)', async () => {
    proxy.inject(on('POST', '/v1/agents'), { kind: 'respond', status: 503, headers: { 'retry-after': '0' }, body: problem(503, 'REQUEST_TIMEOUT') });
    const retries: RetryContext[] = [];
    const before = proxy.log.length;
    const err = await caught(client(retries).agents.create({ name: 'Timed', persona: 'Sent once.' }));
    expect(err).toMatchObject({ code: 'REQUEST_TIMEOUT', status: 503 });
    expect(retries).toEqual([]);
    expect(proxy.log.slice(before).filter((l) => l.method === 'POST' && l.path === '/v1/agents')).toHaveLength(1);
  });

  it("does not send a POST without an Idempotency-Key again after a 503 that is not the API's answer", async () => {
    proxy.inject(on('POST', '/v1/agents'), { kind: 'respond', status: 503, headers: { 'retry-after': '0' }, body: '<html>Service Unavailable</html>' });
    const retries: RetryContext[] = [];
    const err = await caught(client(retries).agents.create({ name: 'Proxied', persona: 'Sent once.' }));
    expect(err).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503 });
    expect(retries).toEqual([]);
  });

  it('sends a POST again after a 503 that says nothing was done', async () => {
    proxy.inject(on('POST', '/v1/agents'), { kind: 'respond', status: 503, headers: { 'retry-after': '0' }, body: problem(503, 'REDIS_UNAVAILABLE') });
    const retries: RetryContext[] = [];
    const agent = await client(retries).agents.create({ name: 'Again', persona: 'Made on the second try.' });
    expect(agent.name).toBe('Again');
    expect(retries.map((r) => r.reason)).toEqual([503]);
  });

  it('sends a GET, and a submit with its Idempotency-Key, again after a 503 REQUEST_TIMEOUT: one job', async () => {
    const fresh = await stack.user('member');
    const retries: RetryContext[] = [];
    const c = createClient({ baseUrl: proxy.url, auth: fresh.token, retry: { baseDelayMs: 20 }, interceptors: [{ onRetry: (r) => void retries.push(r) }] });
    proxy.inject(on('GET', '/v1/auth/me'), { kind: 'respond', status: 503, headers: { 'retry-after': '0' }, body: problem(503, 'REQUEST_TIMEOUT') });
    expect((await c.auth.me()).id).toBe(fresh.id);
    proxy.inject(on('POST', '/v1/jobs'), { kind: 'respond', status: 503, headers: { 'retry-after': '0' }, body: problem(503, 'REQUEST_TIMEOUT') });
    const job = await c.jobs.submit('system.ping', { echo: 'timed out once' });
    expect(retries.map((r) => r.reason)).toEqual([503, 503]);
    const all = [];
    for await (const j of c.jobs.list()) all.push(j.id);
    expect(all).toEqual([job.id]);
  });

  it('rejects with ABORTED when aborted while waiting to retry', async () => {
    proxy.inject(on('GET', '/v1/auth/me'), { kind: 'respond', status: 503, headers: { 'retry-after': '30' }, body: problem(503, 'SERVICE_UNAVAILABLE') });
    const controller = new AbortController();
    const c = createClient({ baseUrl: proxy.url, auth: user.token, interceptors: [{ onRetry: () => controller.abort() }] });
    expect((await caught(c.auth.me({ signal: controller.signal }))).code).toBe('ABORTED');
  });
});
