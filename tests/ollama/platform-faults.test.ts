/**
 * Upstream faults through the whole platform (API → queue → worker → client
 * → stub): a stream reset after output is never retried inside the client
 * (each job attempt sends exactly one request), the tokens a failed attempt
 * consumed are counted with the job, and a 503 storm makes jobs wait, not
 * fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { startOllamaStub, type OllamaStub } from '../support/ollama-stub.ts';

let stack: Stack;
let stub: OllamaStub;
let alice: TestUser;

beforeAll(async () => {
  stub = await startOllamaStub();
  stack = await startStack({
    workers: ['llm'],
    env: {
      OLLAMA_HOSTS: stub.url,
      PARLEY_CONCURRENCY: 'llm=6',
      OLLAMA_CONCURRENCY_INITIAL: '6',
      OLLAMA_RETRY_BASE_MS: '20',
      OLLAMA_RETRY_MAX_MS: '200',
      OLLAMA_STATUS_INTERVAL_MS: '60000',
    },
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
    // Every attempt streamed two tokens before its reset: all of them are counted, as estimated.
    expect(job.usage).toMatchObject({ completionTokens: 2 * job.attempts, estimated: true });
  });

  it('counts the tokens of an attempt that failed mid-stream in the job and in usage_daily, once', async () => {
    const bob = await stack.user('member');
    stub.script('/api/chat', { kind: 'reset-after', tokens: 2 });
    stub.fallback = { kind: 'ok' };
    const r = await stack.request('POST', '/v1/jobs', { user: bob, body: chat('retry me') });
    const job = await stack.waitForJob(r.json.id, bob, 60_000);
    expect(job.state).toBe('completed');
    expect(job.attempts).toBe(2);
    const last = job.result.usage;
    expect(last).toMatchObject({ promptTokens: 7, estimated: false });
    // The first attempt's 2 streamed tokens and its estimated prompt come on top of Ollama's counts for the second.
    expect(job.usage.completionTokens).toBe(last.completionTokens + 2);
    expect(job.usage.promptTokens).toBeGreaterThan(last.promptTokens);
    expect(job.usage.estimated).toBe(true);
    const rows = await stack.api.db('usage_daily').where({ user_id: bob.id });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ prompt_tokens: job.usage.promptTokens, completion_tokens: job.usage.completionTokens, jobs: 1, estimated_jobs: 1 });
    const events = await readSse(`${stack.base}/v1/jobs/${job.id}/events`, bob.auth, { timeoutMs: 10_000 });
    expect(events.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'completed', usage: job.usage } });
  });

  it('a 503 storm lowers the worker’s concurrency and every job still completes', async () => {
    const K = 15;
    stub.script(
      '/api/chat',
      ...Array.from({ length: K }, () => ({
        kind: 'status' as const,
        status: 503,
        error: 'server busy, please try again.  maximum pending requests exceeded',
      })),
    );
    stub.fallback = { kind: 'ok', firstTokenDelayMs: 20, tokenDelayMs: 5 };
    const ids = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => (await stack.request('POST', '/v1/jobs', { user: alice, body: chat(`storm ${i}`) })).json.id as string),
    );
    const jobs = await Promise.all(ids.map((id) => stack.waitForJob(id, alice, 60_000)));
    expect(jobs.map((j) => j.state)).toEqual(Array(6).fill('completed'));
    expect(jobs.every((j) => j.attempts === 1)).toBe(true);
    const { metrics } = stack.workers!;
    const overloadDecreases = (await metrics.ollamaLimitChanges.get()).values.find((v) => v.labels.reason === 'overload')?.value ?? 0;
    expect(overloadDecreases).toBeGreaterThanOrEqual(1);
    expect((await metrics.ollamaRetries.get()).values.find((v) => v.labels.reason === 'overload')?.value).toBe(K);
  });
});
