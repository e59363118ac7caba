/**
 * The optional LLM pass of knowledge extraction: one call to the chat model
 * per message at most, its answer validated, and the deterministic result
 * kept whenever the answer does not validate. The pure checks run on crafted
 * answers; the job runs on the real stack with the real Ollama behind a
 * proxy that counts the model calls and, for one call, answers a
 * schema-invalid label set in Ollama's own wire format.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLlmAnswer, extractSource, llmPassRequest, llmPassReservation } from '../../platform/knowledge/index.ts';
import type { KnowledgeItem } from '../../shared/index.ts';
import type { TestUser } from '../harness.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';

const scope = { scope: 'private' as const, owner: 'u1', room: null };
const items = (text: string): KnowledgeItem[] =>
  extractSource({ kind: 'document', title: 't', text }, { sourceId: 's1', scope, recordedAt: '2026-01-01T00:00:00.000Z' }).items;

describe('validating the model’s answer', () => {
  const mine = items('The audit ends on Friday. We decided to migrate the payroll service after it.');

  it('asks for one label per statement, constrained by a schema', () => {
    const req = llmPassRequest('text', mine)!;
    expect(req.messages.at(-1)!.content).toContain(`0. ${mine[0]!.text}`);
    expect((req.format as any).properties.items.items.properties.index.maximum).toBe(mine.length - 1);
    expect(llmPassRequest('text', [])).toBeNull();
  });

  it('applies a valid answer and counts what changed', () => {
    const labels = mine.map((_, index) => ({ index, class: 'claim' }));
    const r = applyLlmAnswer(mine, JSON.stringify({ items: labels }));
    expect(r.applied).toBe(true);
    expect(r.items.map((i) => i.class)).toEqual(mine.map(() => 'claim'));
    expect(r.items.map((i) => i.id)).toEqual(mine.map((i) => i.id));
    if (r.applied) expect(r.changed).toBe(mine.filter((i) => i.class !== 'claim').length);
  });

  it.each([
    ['not JSON', '{"items": [{"index": 0, "cla'],
    [
      'an unknown class',
      JSON.stringify({
        items: [
          { index: 0, class: 'rumour' },
          { index: 1, class: 'fact' },
        ],
      }),
    ],
    [
      'an index out of range',
      JSON.stringify({
        items: [
          { index: 0, class: 'fact' },
          { index: 5, class: 'fact' },
        ],
      }),
    ],
    [
      'a statement labelled twice',
      JSON.stringify({
        items: [
          { index: 0, class: 'fact' },
          { index: 0, class: 'claim' },
        ],
      }),
    ],
    ['a statement left out', JSON.stringify({ items: [{ index: 0, class: 'fact' }] })],
    [
      'extra fields',
      JSON.stringify({
        items: [
          { index: 0, class: 'fact', text: 'x' },
          { index: 1, class: 'fact' },
        ],
      }),
    ],
  ])('keeps the deterministic result for %s', (_, answer) => {
    const r = applyLlmAnswer(mine, answer);
    expect(r.applied).toBe(false);
    expect(r.items).toEqual(mine);
    if (!r.applied) expect(r.reason.length).toBeGreaterThan(0);
  });
});

let proxy: FaultProxy;
let stack: CodeStack;
let alice: TestUser;

beforeAll(async () => {
  proxy = await startFaultProxy(process.env.OLLAMA_HOST ?? 'http://127.0.0.1:11500');
  stack = await startCodeStack({ env: { OLLAMA_HOST: proxy.url, OLLAMA_HOSTS: '' } });
  alice = await stack.user('member');
}, 120_000);
afterAll(async () => {
  await stack?.cleanup();
  await proxy?.close();
});

const chatCalls = () => proxy.log.filter((l) => l.path === '/api/chat').length;

describe('the LLM pass in knowledge.extract', () => {
  const messages = [
    { id: 'm1', speaker: 'Ada', text: 'The payroll service runs on server ASR1603. We decided to migrate it on Friday.' },
    { id: 'm2', speaker: 'Grace', text: 'Thanks!' },
    { id: 'm3', speaker: 'Grace', text: 'I prefer to wait for the audit. What does the audit cover?' },
  ];

  /** Alice's tokens in usage_daily, every model and day. */
  async function spent(): Promise<{ prompt: number; completion: number }> {
    const [row] = await stack.api.db('usage_daily').where({ user_id: alice.id }).sum({ prompt: 'prompt_tokens', completion: 'completion_tokens' });
    return { prompt: Number(row?.prompt ?? 0), completion: Number(row?.completion ?? 0) };
  }

  async function extract(llmPass: boolean, title: string) {
    const r = await stack.request('POST', '/v1/knowledge/sources', { user: alice, body: { source: { kind: 'conversation', title, messages }, llmPass } });
    expect(r.status, r.text).toBe(202);
    const job = await stack.waitForJob(r.json.job.id, alice, 240_000);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    return job;
  }

  it('calls the model at most once per message, and keeps the deterministic classes when an answer does not validate', async () => {
    // The first model call gets a well-formed Ollama answer whose labels do not fit the schema; the others go to the real model.
    const invalid = {
      model: 'x',
      message: { role: 'assistant', content: JSON.stringify({ items: [{ index: 9, class: 'rumour' }] }) },
      done: true,
      eval_count: 1,
    };
    proxy.inject((m, p) => m === 'POST' && p === '/api/chat', {
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/x-ndjson' },
      body: `${JSON.stringify(invalid)}\n`,
    });
    const before = chatCalls();
    const spentBefore = await spent();
    const job = await extract(true, 'With the LLM pass');
    const calls = chatCalls() - before;
    // Two messages have items (m2 has none): two calls, as the job reports.
    expect(calls).toBe(2);
    expect(job.result.llm.calls).toBe(calls);
    expect(job.result.llm.applied + job.result.llm.fallbacks.length).toBe(2);
    const refused = job.result.llm.fallbacks.find((f: any) => f.messageId === 'm1');
    expect(refused.reason).toMatch(/schema|statement/);
    // Metered: the injected answer counted 1 token and the real call its own; the owner's usage grew by the same.
    const usage = job.result.llm.usage;
    expect(usage.completionTokens).toBeGreaterThan(1);
    expect(usage.promptTokens).toBeGreaterThan(0);
    expect(await spent()).toEqual({ prompt: spentBefore.prompt + usage.promptTokens, completion: spentBefore.completion + usage.completionTokens });
    // The job shows what it consumed, as a metered job does (its only model calls are the pass's).
    expect(job.usage).toMatchObject({ promptTokens: usage.promptTokens, completionTokens: usage.completionTokens });

    // m1's items kept the extractor's classes; every stored class is a known one.
    const deterministic = extractSource({ kind: 'conversation', title: 't', messages }, { sourceId: 'x', scope, recordedAt: '2026-01-01T00:00:00.000Z' }).items;
    const hits = (await stack.request('GET', `/v1/knowledge/search?q=${encodeURIComponent('payroll server migrate audit')}&limit=20`, { user: alice })).json
      .items;
    const stored = hits.map((h: any) => h.item).filter((i: any) => i.provenance.sourceId === job.result.sourceId);
    const m1 = stored.filter((i: any) => i.provenance.messageIds[0] === 'm1');
    expect(m1.length).toBeGreaterThan(0);
    for (const i of m1) expect(i.class).toBe(deterministic.find((d) => d.text === i.text)!.class);
    for (const i of stored) expect(['fact', 'claim', 'definition', 'decision', 'question', 'preference']).toContain(i.class);
  });

  it('makes no model call without it', async () => {
    const before = chatCalls();
    const spentBefore = await spent();
    const job = await extract(false, 'Without the LLM pass');
    expect(chatCalls() - before).toBe(0);
    expect(job.result.llm).toBeNull();
    expect(await spent()).toEqual(spentBefore);
  });

  describe('against the owner’s token budget', () => {
    async function withDailyBudget(limitTokens: number): Promise<TestUser> {
      const u = await stack.user('member');
      const admin = await stack.user('admin');
      const r = await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: u.id, period: 'day', limitTokens } });
      expect(r.status, r.text).toBe(200);
      return u;
    }
    const usedToday = async (u: TestUser): Promise<number> => {
      const r = await stack.request('GET', '/v1/usage', { user: u });
      expect(r.status, r.text).toBe(200);
      return r.json.budgets.find((b: any) => b.period === 'day').usedTokens;
    };
    // Texts of its own per test: an answer the response cache already holds costs nothing, so nothing to settle.
    const sourceOf = () => {
      const tag = Math.random().toString(36).slice(2, 8);
      return { kind: 'conversation', title: 'Budgeted', messages: messages.map((m) => ({ ...m, text: `${m.text} (ticket ${tag})` })) };
    };

    it('refuses a source whose LLM pass the budget cannot hold with 429 BUDGET_EXHAUSTED, recording nothing; without the pass it is accepted', async () => {
      const source = sourceOf();
      const need = llmPassReservation(source as any, 256);
      const u = await withDailyBudget(need - 1);
      const r = await stack.request('POST', '/v1/knowledge/sources', { user: u, body: { source, llmPass: true } });
      expect(r.status, r.text).toBe(429);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.json).toMatchObject({ code: 'BUDGET_EXHAUSTED', requested: need, limit: need - 1 });
      expect(r.json.detail).toMatch(/LLM pass/);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await stack.request('GET', '/v1/knowledge/sources', { user: u })).json.items).toEqual([]);
      const counted = (await stack.api.db('jobs').where({ owner_id: u.id }).count({ n: '*' })) as { n: string | number }[];
      expect(Number(counted[0]?.n)).toBe(0);
      expect(await usedToday(u)).toBe(0);

      const plain = await stack.request('POST', '/v1/knowledge/sources', { user: u, body: { source, llmPass: false } });
      expect(plain.status, plain.text).toBe(202);
      expect((await stack.waitForJob(plain.json.job.id, u, 240_000)).state).toBe('completed');
      expect(await usedToday(u)).toBe(0);
    });

    it('stops the pass once the budget runs out mid-way: the calls after it are not made, their messages keep the deterministic result', async () => {
      const u = await withDailyBudget(1_000_000);
      const source = sourceOf();
      // The first model call is held a moment, long enough to lower the budget while the pass runs.
      proxy.inject((m, p) => m === 'POST' && p === '/api/chat', { kind: 'delay', ms: 1500 });
      const before = chatCalls();
      const r = await stack.request('POST', '/v1/knowledge/sources', { user: u, body: { source, llmPass: true } });
      expect(r.status, r.text).toBe(202);
      for (let i = 0; i < 200 && chatCalls() === before; i++) await new Promise((res) => setTimeout(res, 25));
      expect(chatCalls() - before).toBe(1);
      const admin = await stack.user('admin');
      const lowered = await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: u.id, period: 'day', limitTokens: 1 } });
      expect(lowered.status, lowered.text).toBe(200);
      const job = await stack.waitForJob(r.json.job.id, u, 240_000);
      expect(job.state, JSON.stringify(job.error)).toBe('completed');
      // One call made (without the guard, one per message with items: three); the messages after it fell back, saying why.
      expect(chatCalls() - before).toBe(1);
      expect(job.result.llm.calls).toBe(1);
      expect(job.result.llm.fallbacks.map((f: any) => f.reason)).toContainEqual(expect.stringMatching(/token budget ran out during the pass/));
      const spentTokens = job.result.llm.usage.promptTokens + job.result.llm.usage.completionTokens;
      expect(spentTokens).toBeGreaterThan(1);
      expect(await usedToday(u)).toBe(spentTokens);
    });

    it('holds the estimate while the job runs and settles to exactly what the pass spent', async () => {
      const u = await withDailyBudget(1_000_000);
      const source = sourceOf();
      const r = await stack.request('POST', '/v1/knowledge/sources', { user: u, body: { source, llmPass: true } });
      expect(r.status, r.text).toBe(202);
      // Reserved at submit, before any worker ran it (the estimate, or the settled figure if it was that fast).
      const early = await usedToday(u);
      const job = await stack.waitForJob(r.json.job.id, u, 240_000);
      expect(job.state, JSON.stringify(job.error)).toBe('completed');
      const spentTokens = job.result.llm.usage.promptTokens + job.result.llm.usage.completionTokens;
      expect(spentTokens).toBeGreaterThan(0);
      expect([llmPassReservation(source as any, 256), spentTokens]).toContain(early);
      expect(spentTokens).toBeLessThan(llmPassReservation(source as any, 256));
      expect(await usedToday(u)).toBe(spentTokens);
    });
  });
});
