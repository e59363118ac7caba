/**
 * Nothing is dropped silently: when extraction cannot store a source (here,
 * the configured embedding model is not installed in Ollama, a real and
 * final failure), the job fails and every message still ends with a
 * recorded outcome — `failed`, with the reason — and the source says failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../harness.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';

let stack: CodeStack;
let alice: TestUser;

beforeAll(async () => {
  stack = await startCodeStack({ env: { PARLEY_EMBED_MODEL: 'parley-absent-embedder:latest' } });
  alice = await stack.user('member');
}, 120_000);
afterAll(() => stack?.cleanup());

describe('extraction outcomes on failure', () => {
  it('records every message as failed, with the reason, when the items cannot be stored', async () => {
    const messages = [
      { id: 'a1', speaker: 'Ada', text: 'The payroll service runs on server ASR1603.' },
      { id: 'a2', speaker: 'Ada', text: 'Thanks!' },
      { id: 'a3', speaker: 'Grace', text: 'The audit ends on Friday.' },
    ];
    const r = await stack.request('POST', '/v1/knowledge/sources', { user: alice, body: { source: { kind: 'conversation', title: 'Doomed', messages } } });
    expect(r.status, r.text).toBe(202);
    const job = await stack.waitForJob(r.json.job.id, alice, 120_000);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('UPSTREAM_REJECTED');
    const view = (await stack.request('GET', `/v1/knowledge/sources/${r.json.source.id}`, { user: alice })).json;
    expect(view).toMatchObject({ status: 'failed', items: 0 });
    expect(view.error).toContain('parley-absent-embedder');
    expect(view.outcomes.map((o: any) => [o.messageId, o.outcome])).toEqual([
      ['a1', 'failed'],
      ['a2', 'failed'],
      ['a3', 'failed'],
    ]);
    for (const o of view.outcomes) expect(o.reason).toContain('parley-absent-embedder');
  });
});
