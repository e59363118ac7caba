/**
 * Nothing is dropped silently, whatever ends the extraction: a source whose
 * `knowledge.extract` job is cancelled, before it ran or while it ran, ends
 * `failed` with every message recorded `failed` and the reason, never
 * `pending` for good.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../harness.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';

let idle: CodeStack;
let busy: CodeStack;
let alice: TestUser;

beforeAll(async () => {
  // No workers: a job stays queued until cancelled, so the handler never runs.
  [idle, busy] = await Promise.all([startCodeStack({ workers: false }), startCodeStack()]);
  alice = await idle.user('member');
}, 120_000);
afterAll(() => Promise.all([idle?.cleanup(), busy?.cleanup()]));

const messages = [
  { id: 'c1', speaker: 'Ada', text: 'The payroll service runs on server ASR1603.' },
  { id: 'c2', speaker: 'Grace', text: 'The audit ends on Friday.' },
];

describe('a cancelled extraction', () => {
  it('records every message as failed when the job was cancelled before it ran', async () => {
    const r = await idle.request('POST', '/v1/knowledge/sources', { user: alice, body: { source: { kind: 'conversation', title: 'Cancelled', messages } } });
    expect(r.status, r.text).toBe(202);
    const cancel = await idle.request('POST', `/v1/jobs/${r.json.job.id}/cancel`, { user: alice });
    expect(cancel.status, cancel.text).toBeLessThan(300);
    expect((await idle.request('GET', `/v1/jobs/${r.json.job.id}`, { user: alice })).json.state).toBe('cancelled');
    const view = (await idle.request('GET', `/v1/knowledge/sources/${r.json.source.id}`, { user: alice })).json;
    expect(view).toMatchObject({ status: 'failed', items: 0 });
    expect(view.error).toContain('cancelled');
    expect(view.outcomes.map((o: any) => [o.messageId, o.outcome])).toEqual([
      ['c1', 'failed'],
      ['c2', 'failed'],
    ]);
    for (const o of view.outcomes) expect(o.reason).toContain('cancelled');
    // The list shows it settled too, and reading again changes nothing.
    const listed = (await idle.request('GET', '/v1/knowledge/sources', { user: alice })).json.items.find((s: any) => s.id === r.json.source.id);
    expect(listed.status).toBe('failed');
    expect((await idle.request('GET', `/v1/knowledge/sources/${r.json.source.id}`, { user: alice })).json.outcomes).toEqual(view.outcomes);
  });

  it('records every message as failed when the job was cancelled while it ran, from the handler itself', async () => {
    const bob = await busy.user('member');
    // The optional LLM pass makes one model call per message: long enough to cancel in the middle.
    const many = Array.from({ length: 12 }, (_, i) => ({
      id: `m${i}`,
      speaker: i % 2 ? 'Ada' : 'Grace',
      text: `Fact ${i}: the server ASR${1600 + i} runs the payroll service.`,
    }));
    const r = await busy.request('POST', '/v1/knowledge/sources', {
      user: bob,
      body: { source: { kind: 'conversation', title: 'Cut short', messages: many }, llmPass: true },
    });
    expect(r.status, r.text).toBe(202);
    const id = r.json.job.id as string;
    for (let i = 0; i < 600 && (await busy.request('GET', `/v1/jobs/${id}`, { user: bob })).json.state !== 'active'; i++)
      await new Promise((res) => setTimeout(res, 50));
    await busy.request('POST', `/v1/jobs/${id}/cancel`, { user: bob });
    const job = await busy.waitForJob(id, bob, 120_000);
    // Twelve model calls take seconds; the cancel lands while they run.
    expect(job.state).toBe('cancelled');
    const row = await busy.api.db('knowledge_sources').where({ id: r.json.source.id }).first();
    // Written by the handler as it stopped: no read settled it.
    expect(row).toMatchObject({ status: 'failed', error: 'the extraction job was cancelled' });
    const outcomes = await busy.api.db('knowledge_outcomes').where({ source_id: r.json.source.id }).orderBy('seq');
    expect(outcomes.map((o: any) => o.message_id)).toEqual(many.map((m) => m.id));
    for (const o of outcomes) expect(o.outcome).toBe('failed');
  });

  it('leaves a source whose job is still queued pending', async () => {
    const r = await idle.request('POST', '/v1/knowledge/sources', {
      user: alice,
      body: { source: { kind: 'document', title: 'Waiting', text: 'The audit ends on Friday.' } },
    });
    expect(r.status).toBe(202);
    const view = (await idle.request('GET', `/v1/knowledge/sources/${r.json.source.id}`, { user: alice })).json;
    expect(view.status).toBe('pending');
    expect(view.outcomes).toEqual([]);
  });
});
