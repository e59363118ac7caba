/**
 * Token accounting: a job's recorded usage is Ollama's own count (streamed
 * or not), `usage_daily` adds each job exactly once in the terminal write,
 * cancelled jobs land there as estimated, and the usage routes report it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

const host = process.env.OLLAMA_HOST!.includes('://') ? process.env.OLLAMA_HOST! : `http://${process.env.OLLAMA_HOST}`;
const chatModel = process.env.PARLEY_CHAT_MODEL ?? 'smollm2:135m';
const embedModel = process.env.PARLEY_EMBED_MODEL ?? 'all-minilm';
/** usage_daily keeps Ollama's canonical names: `all-minilm` is `all-minilm:latest`. */
const canonical = (m: string) => (/:[^/]*$/.test(m) ? m : `${m}:latest`);
const today = () => new Date().toISOString().slice(0, 10);

let stack: Stack;
let operator: TestUser;

beforeAll(async () => {
  stack = await startStack();
  operator = await stack.user('operator');
});
afterAll(() => stack?.stop());

/** The shared Ollama can be slow while other suites run: generous bounds, and the job in the message when it did not complete. */
const SLOW = 300_000;
async function completed(id: string, u: TestUser): Promise<any> {
  const job = await stack.waitForJob(id, u, SLOW - 30_000);
  expect(job.state, JSON.stringify(job)).toBe('completed');
  return job;
}

async function daily(userId: string, model: string) {
  return (await stack.api.db('usage_daily').where({ user_id: userId, model, day: today() }).first()) as
    { prompt_tokens: number; completion_tokens: number; jobs: number; estimated_jobs: number } | undefined;
}

describe('usage equals Ollama\u2019s counts', () => {
  it(
    'records a streamed chat with the prompt and completion counts Ollama reports for the same request unstreamed',
    async () => {
      const u = await stack.user('member');
      const messages = [{ role: 'user', content: 'Write a long story about a lighthouse keeper.' }];
      const options = { temperature: 0, seed: 42, num_predict: 24 };
      const r = await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'llm.chat', input: { messages, options } } });
      expect(r.status).toBe(202);
      const job = await completed(r.json.id, u);

      const direct = (await (
        await fetch(`${host}/api/chat`, { method: 'POST', body: JSON.stringify({ model: chatModel, messages, options, stream: false }) })
      ).json()) as {
        prompt_eval_count: number;
        eval_count: number;
        message: { content: string };
      };
      expect(job.usage).toEqual({ model: chatModel, promptTokens: direct.prompt_eval_count, completionTokens: direct.eval_count, estimated: false });
      expect(job.result.usage).toEqual(job.usage);

      expect(await daily(u.id, chatModel)).toEqual({
        user_id: u.id,
        model: chatModel,
        day: expect.anything(),
        prompt_tokens: direct.prompt_eval_count,
        completion_tokens: direct.eval_count,
        jobs: 1,
        estimated_jobs: 0,
      });
    },
    SLOW,
  );

  it(
    'records an embedding batch with the prompt count Ollama reports',
    async () => {
      const u = await stack.user('member');
      const texts = ['the cat sat on the mat', 'a dog barked at the mailman', 'rain is expected tomorrow'];
      const r = await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'embed.batch', input: { texts, batchSize: 2 } } });
      const job = await completed(r.json.id, u);
      // Two upstream calls (batchSize 2): their counts add up.
      let expected = 0;
      for (const batch of [texts.slice(0, 2), texts.slice(2)]) {
        const d = (await (
          await fetch(`${host}/api/embed`, { method: 'POST', body: JSON.stringify({ model: embedModel, input: batch, truncate: true }) })
        ).json()) as { prompt_eval_count: number };
        expected += d.prompt_eval_count;
      }
      expect(job.usage).toEqual({ model: embedModel, promptTokens: expected, completionTokens: 0, estimated: false });
      expect(await daily(u.id, canonical(embedModel))).toMatchObject({ prompt_tokens: expected, completion_tokens: 0, jobs: 1, estimated_jobs: 0 });
    },
    SLOW,
  );

  it(
    'sums several jobs per user, model and day, and reports them on GET /v1/usage',
    async () => {
      const u = await stack.user('member');
      const ids: string[] = [];
      for (const n of [4, 6, 8]) {
        ids.push(
          (
            await stack.request('POST', '/v1/jobs', {
              user: u,
              body: { kind: 'llm.chat', input: { messages: [{ role: 'user', content: `Count to ${n}.` }], options: { num_predict: n, temperature: 0 } } },
            })
          ).json.id,
        );
      }
      const done = await Promise.all(ids.map((id) => completed(id, u)));
      const prompt = done.reduce((n, j) => n + j.usage.promptTokens, 0);
      const completion = done.reduce((n, j) => n + j.usage.completionTokens, 0);
      expect(await daily(u.id, chatModel)).toMatchObject({ prompt_tokens: prompt, completion_tokens: completion, jobs: 3, estimated_jobs: 0 });

      const mine = await stack.request('GET', '/v1/usage', { user: u });
      expect(mine.status).toBe(200);
      expect(mine.json.to).toBe(today());
      expect(mine.json.items).toEqual([
        { day: today(), model: chatModel, promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, jobs: 3, estimatedJobs: 0 },
      ]);
      expect(mine.json.totals).toEqual({ promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, jobs: 3, estimatedJobs: 0 });
      expect(mine.json.budgets).toEqual([]);

      const filtered = await stack.request('GET', `/v1/usage?model=${encodeURIComponent(embedModel)}`, { user: u });
      expect(filtered.json.items).toEqual([]);
      const past = await stack.request('GET', '/v1/usage?from=2020-01-01&to=2020-01-31', { user: u });
      expect(past.json.totals.jobs).toBe(0);
      expect((await stack.request('GET', '/v1/usage?from=2020-02-01&to=2020-01-01', { user: u })).status).toBe(400);
      expect((await stack.request('GET', '/v1/usage?from=2019-01-01&to=2020-06-01', { user: u })).status).toBe(400);

      // Operators see everyone, grouped.
      expect((await stack.request('GET', '/v1/admin/usage', { user: u })).status).toBe(403);
      const byUser = await stack.request('GET', `/v1/admin/usage?groupBy=user&userId=${u.id}`, { user: operator });
      expect(byUser.status).toBe(200);
      expect(byUser.json.items).toEqual([
        {
          key: u.id,
          user: { id: u.id, username: u.username },
          promptTokens: prompt,
          completionTokens: completion,
          totalTokens: prompt + completion,
          jobs: 3,
          estimatedJobs: 0,
        },
      ]);
      const byModel = await stack.request('GET', `/v1/admin/usage?groupBy=model&userId=${u.id}`, { user: operator });
      expect(byModel.json.items).toEqual([expect.objectContaining({ key: chatModel, jobs: 3 })]);
      const byDay = await stack.request('GET', `/v1/admin/usage?groupBy=day&userId=${u.id}&model=${encodeURIComponent(chatModel)}`, { user: operator });
      expect(byDay.json.items).toEqual([expect.objectContaining({ key: today(), totalTokens: prompt + completion })]);
      expect(byDay.json.totals.jobs).toBe(3);
    },
    SLOW,
  );
});

describe('partial usage', () => {
  it(
    'stops generation on cancel and records the partial usage as estimated, in usage_daily too',
    async () => {
      const u = await stack.user('member');
      const r = await stack.request('POST', '/v1/jobs', {
        user: u,
        body: {
          kind: 'llm.chat',
          input: {
            messages: [{ role: 'user', content: 'Write a very long story about the sea, with many chapters.' }],
            options: { num_predict: 1500, temperature: 0.7 },
          },
        },
      });
      await readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, u.auth, {
        timeoutMs: SLOW - 30_000,
        stopAfter: (e) => e.event === 'tokens' && e.data.seq >= 8,
      });
      const c = await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user: u });
      expect(c.json.state).toBe('cancelled');
      const job = c.json;
      expect(job.usage.estimated).toBe(true);
      expect(job.usage.completionTokens).toBeGreaterThanOrEqual(8);
      expect(job.usage.completionTokens).toBeLessThan(1500);
      expect(job.usage.promptTokens).toBeGreaterThan(0);
      expect(await daily(u.id, chatModel)).toMatchObject({
        prompt_tokens: job.usage.promptTokens,
        completion_tokens: job.usage.completionTokens,
        jobs: 1,
        estimated_jobs: 1,
      });
      const mine = await stack.request('GET', '/v1/usage', { user: u });
      expect(mine.json.totals).toMatchObject({ jobs: 1, estimatedJobs: 1 });
    },
    SLOW,
  );

  it('records nothing for a job cancelled before it ran', async () => {
    const idle = await startStack({ workers: false });
    try {
      const u = await idle.user('member');
      const r = await idle.request('POST', '/v1/jobs', { user: u, body: { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'hi' }] } } });
      expect((await idle.request('DELETE', `/v1/jobs/${r.json.id}`, { user: u })).json).toMatchObject({ state: 'cancelled', usage: null });
      expect(await idle.api.db('usage_daily').where({ user_id: u.id })).toEqual([]);
    } finally {
      await idle.stop();
    }
  });
});

describe('exactly once', () => {
  it('adds a job to usage_daily once when five terminal writes race', async () => {
    const u = await stack.user('member');
    const model = `race-${randomUUID().slice(0, 8)}:t`;
    const id = randomUUID();
    await stack.api.jobs.store.insert({ id, kind: 'llm.chat', v: 1, queue: 'llm', ownerId: u.id, priority: 'normal', maxAttempts: 1, input: {} });
    const usage = { model, promptTokens: 11, completionTokens: 7, estimated: false };
    const won = await Promise.all([
      ...Array.from({ length: 3 }, () => stack.api.jobs.store.finish(id, { state: 'completed', result: { text: 'x' }, usage })),
      stack.api.jobs.store.finish(id, { state: 'failed', error: { code: 'STALLED', message: 'race' }, usage: { ...usage, estimated: true } }),
      stack.api.jobs.store.finish(id, { state: 'cancelled', error: { code: 'CANCELLED', message: 'race' }, usage: { ...usage, estimated: true } }),
    ]);
    expect(won.filter(Boolean)).toHaveLength(1);
    const row = await daily(u.id, model);
    expect(row).toMatchObject({ jobs: 1, prompt_tokens: 11, completion_tokens: 7 });
    const recorded = (await stack.api.jobs.store.get(id))!;
    expect(row!.estimated_jobs).toBe(recorded.usage_estimated ? 1 : 0);
    expect(await stack.api.jobs.store.finish(id, { state: 'completed', usage })).toBe(false);
    expect((await daily(u.id, model))!.jobs).toBe(1);
  });
});
