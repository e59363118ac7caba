/**
 * Upstream faults through the whole platform (API → queue → worker → client
 * → stub): a stream reset after output is never retried inside the client
 * (each job attempt sends exactly one request), and a 503 storm makes jobs
 * wait, not fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { startOllamaStub, type OllamaStub } from '../support/ollama-stub.ts';

let stack: Stack;
let stub: OllamaStub;
let alice: TestUser;

beforeAll(async () => {
  stub = await startOllamaStub();
  stack = await startStack({
    workers: ['llm'],
    env: { OLLAMA_HOSTS: stub.url, PARLEY_CONCURRENCY: 'llm=6', OLLAMA_CONCURRENCY_INITIAL: '6', OLLAMA_RETRY_BASE_MS: '20', OLLAMA_RETRY_MAX_MS: '200', OLLAMA_STATUS_INTERVAL_MS: '60000' },
  });
  alice = await stack.user('member');
});
afterAll(async () => {
  await stack?.stop();
  await stub?.close();
});

const chat = (content: string) => ({ kind: 'llm.chat', input: { messages: [{ role: 'user', content }], options: { num_predict: 8, temperature: 0.5 } } });

describe('faults through the platform', () => {
  it('a reset after output fails the job with UPSTREAM_UNAVAILABLE; each attempt sent exactly one request', async () => {
    stub.script('/api/chat', ...Array.from({ length: 3 }, () => ({ kind: 'reset-after' as const, tokens: 2 })));
    const before = stub.count('/api/chat');
    const r = await stack.request('POST', '/v1/jobs', { user: alice, body: chat('reset me') });
    const job = await stack.waitForJob(r.json.id, alice, 60_000);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(job.attempts).toBe(job.maxAttempts);
    expect(stub.count('/api/chat') - before).toBe(job.attempts);
    expect(job.result).toMatchObject({ partial: true, text: 't0 t1 ' });
  });

  it('a 503 storm lowers the worker’s concurrency and every job still completes', async () => {
    const K = 15;
    stub.script('/api/chat', ...Array.from({ length: K }, () => ({ kind: 'status' as const, status: 503, error: 'server busy, please try again.  maximum pending requests exceeded' })));
    stub.fallback = { kind: 'ok', firstTokenDelayMs: 20, tokenDelayMs: 5 };
    const ids = await Promise.all(Array.from({ length: 6 }, async (_, i) => (await stack.request('POST', '/v1/jobs', { user: alice, body: chat(`storm ${i}`) })).json.id as string));
    const jobs = await Promise.all(ids.map((id) => stack.waitForJob(id, alice, 60_000)));
    expect(jobs.map((j) => j.state)).toEqual(Array(6).fill('completed'));
    expect(jobs.every((j) => j.attempts === 1)).toBe(true);
    const { metrics } = stack.workers!;
    const overloadDecreases = (await metrics.ollamaLimitChanges.get()).values.find((v) => v.labels.reason === 'overload')?.value ?? 0;
    expect(overloadDecreases).toBeGreaterThanOrEqual(1);
    expect((await metrics.ollamaRetries.get()).values.find((v) => v.labels.reason === 'overload')?.value).toBe(K);
  });
});
