/**
 * Token budgets: reserved at submit (429 BUDGET_EXHAUSTED when the
 * reservation does not fit), enforced while a chat streams (the job fails
 * BUDGET_EXHAUSTED with partial usage), settled to the real count at the end.
 * Budgets here are user-scoped to users made for this suite, so no other
 * suite sharing the database is affected; role rules are exercised on the
 * ledger with explicit rules for the same reason.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBudgets, resolveLimits, type BudgetRule, type Budgets } from '../../platform/usage/index.ts';
import { startWorkers } from '../../workers/main.ts';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

const SLOW = 300_000;
let stack: Stack;
let admin: TestUser;
let budgets: Budgets;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.user('admin');
  // The same ledger the API and workers use: same Redis, same key prefix.
  budgets = createBudgets({ db: stack.api.db, redis: stack.api.redis, prefix: stack.prefix });
});
afterAll(() => stack?.stop());

async function setBudget(u: TestUser, limitTokens: number | null, period: 'day' | 'month' = 'day') {
  const r = await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: u.id, period, limitTokens } });
  expect(r.status).toBe(limitTokens === null ? 204 : 200);
  return r.json;
}

const chat = (content: string, num_predict: number, temperature = 0) => ({
  kind: 'llm.chat',
  input: { messages: [{ role: 'user', content }], options: { num_predict, temperature } },
});

describe('reservation at submit', () => {
  it('refuses a job whose reservation does not fit with 429 BUDGET_EXHAUSTED and Retry-After, and queues nothing', async () => {
    const u = await stack.user('member');
    await setBudget(u, 100);
    const r = await stack.request('POST', '/v1/jobs', { user: u, body: chat('Tell me a story.', 200) });
    expect(r.status).toBe(429);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json).toMatchObject({
      code: 'BUDGET_EXHAUSTED',
      status: 429,
      period: 'day',
      source: 'user',
      limit: 100,
      used: 0,
      requested: Math.ceil('Tell me a story.'.length / 4) + 200,
    });
    const retryAfter = Number(r.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(await stack.api.db('jobs').where({ owner_id: u.id })).toEqual([]);
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(0);
  });

  it(
    'reserves prompt estimate + num_predict, then settles to the real count when the job ends',
    async () => {
      // No workers at first, so the job stays queued and the ledger holds exactly its reservation.
      const idle = await startStack({ workers: false });
      let workers: Awaited<ReturnType<typeof startWorkers>> | undefined;
      try {
        const ledger = createBudgets({ db: idle.api.db, redis: idle.api.redis, prefix: idle.prefix });
        const idleAdmin = await idle.user('admin');
        const u = await idle.user('member');
        const set = await idle.request('PUT', '/v1/admin/budgets', {
          user: idleAdmin,
          body: { scope: 'user', subject: u.id, period: 'day', limitTokens: 100 },
        });
        expect(set.status).toBe(200);
        const r = await idle.request('POST', '/v1/jobs', { user: u, body: chat('Say hi.', 16) });
        expect(r.status).toBe(202);
        const reserved = Math.ceil('Say hi.'.length / 4) + 16;
        expect((await ledger.usage(u.id)).day.usedTokens).toBe(reserved);
        expect((await idle.request('GET', `/v1/jobs/${r.json.id}`, { user: u })).json.state).toBe('queued');
        // A second job that would not fit beside the first's reservation is refused; one that fits exactly is not.
        const second = await idle.request('POST', '/v1/jobs', { user: u, body: chat('Say hi.', 100 - reserved) });
        expect(second.status).toBe(429);
        expect(second.json).toMatchObject({
          code: 'BUDGET_EXHAUSTED',
          used: reserved,
          requested: Math.ceil('Say hi.'.length / 4) + 100 - reserved,
        });

        // Workers take the job now: the reservation is settled to what the model really counted.
        workers = await startWorkers(idle.env);
        const job = await idle.waitForJob(r.json.id, u, SLOW - 30_000);
        expect(job.state, JSON.stringify(job)).toBe('completed');
        expect(job.usage.estimated).toBe(false);
        const actual = job.usage.promptTokens + job.usage.completionTokens;
        // The chat template alone makes the real prompt longer than the estimate, so settling moves the ledger.
        expect(actual).not.toBe(reserved);
        expect((await ledger.usage(u.id)).day.usedTokens).toBe(actual);
        const mine = await idle.request('GET', '/v1/usage', { user: u });
        expect(mine.json.budgets).toEqual([
          { period: 'day', source: 'user', limitTokens: 100, usedTokens: actual, remainingTokens: 100 - actual, resetsAt: expect.any(String) },
        ]);
        expect(mine.json.totals.totalTokens).toBe(actual);
      } finally {
        await workers?.stop();
        await idle.stop();
      }
    },
    SLOW,
  );

  it('releases the reservation of a job cancelled before it ran', async () => {
    const idle = await startStack({ workers: false });
    try {
      const idleBudgets = createBudgets({ db: idle.api.db, redis: idle.api.redis, prefix: idle.prefix });
      const u = await idle.user('member');
      const r = await idle.request('POST', '/v1/jobs', { user: u, body: chat('Hello there.', 50) });
      expect(r.status).toBe(202);
      expect((await idleBudgets.usage(u.id)).day.usedTokens).toBe(3 + 50);
      expect((await idle.request('DELETE', `/v1/jobs/${r.json.id}`, { user: u })).json.state).toBe('cancelled');
      expect((await idleBudgets.usage(u.id)).day.usedTokens).toBe(0);
    } finally {
      await idle.stop();
    }
  });
});

describe('enforcement while streaming', () => {
  it(
    'stops a stream once its consumption passes a budget lowered below it; the job fails BUDGET_EXHAUSTED with partial usage',
    async () => {
      const u = await stack.user('member');
      await setBudget(u, 5000);
      const r = await stack.request('POST', '/v1/jobs', {
        user: u,
        body: chat('Write a very long story about a lighthouse keeper and the sea, with many chapters.', 1500, 0.7),
      });
      expect(r.status).toBe(202);
      await readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, u.auth, {
        timeoutMs: SLOW - 60_000,
        stopAfter: (e) => e.event === 'tokens' && e.data.seq >= 4,
      });
      const limit = 80;
      await setBudget(u, limit);

      const job = await stack.waitForJob(r.json.id, u, SLOW - 60_000);
      expect(job.state, JSON.stringify(job)).toBe('failed');
      expect(job.error.code).toBe('BUDGET_EXHAUSTED');
      expect(job.error.message).toMatch(/user budget of 80 tokens per day/);
      expect(job.result).toMatchObject({ partial: true });
      expect(job.usage.estimated).toBe(true);
      const consumed = job.usage.promptTokens + job.usage.completionTokens;
      // Stopped at the first check past the limit: at most one check interval (16 tokens) beyond it.
      expect(consumed).toBeGreaterThan(limit);
      expect(consumed).toBeLessThanOrEqual(limit + 16);
      // The stream ended with the failure, and the budget holds exactly what was recorded.
      const all = await readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, u.auth, { timeoutMs: 10_000 });
      expect(all.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'failed', error: { code: 'BUDGET_EXHAUSTED' } } });
      expect((await budgets.usage(u.id)).day.usedTokens).toBe(consumed);
      const row = await stack.api.db('usage_daily').where({ user_id: u.id }).first();
      expect(row).toMatchObject({ prompt_tokens: job.usage.promptTokens, completion_tokens: job.usage.completionTokens, jobs: 1, estimated_jobs: 1 });

      // Exhausted: the next submit cannot reserve.
      expect((await stack.request('POST', '/v1/jobs', { user: u, body: chat('hi', 8) })).status).toBe(429);
      // Removing the budget lifts it at once.
      await setBudget(u, null);
      expect((await stack.request('POST', '/v1/jobs', { user: u, body: chat('hi', 1) })).status).toBe(202);
    },
    SLOW,
  );
});

describe('the ledger', () => {
  const rule = (scope: 'user' | 'role', subject: string, period: 'day' | 'month', limitTokens: number): BudgetRule => ({
    scope,
    subject,
    period,
    limitTokens,
    updatedAt: new Date(),
    updatedBy: null,
  });

  it('applies a role budget to each user of the role separately, and lets a user budget replace it', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const rules = [rule('role', 'member', 'day', 100), rule('user', c, 'day', 300), rule('role', 'member', 'month', 1000)];
    const la = resolveLimits(rules, { id: a, role: 'member' });
    expect(la).toEqual({ day: { limitTokens: 100, source: 'role' }, month: { limitTokens: 1000, source: 'role' } });
    expect(resolveLimits(rules, { id: c, role: 'member' }).day).toEqual({ limitTokens: 300, source: 'user' });
    expect(resolveLimits(rules, { id: a, role: 'operator' })).toEqual({ day: null, month: null });

    // a and b each get their own 100 a day.
    expect((await budgets.reserve({ jobId: randomUUID(), owner: { id: a, role: 'member' }, tokens: 80, limits: la })).ok).toBe(true);
    expect(
      (await budgets.reserve({ jobId: randomUUID(), owner: { id: b, role: 'member' }, tokens: 80, limits: resolveLimits(rules, { id: b, role: 'member' }) }))
        .ok,
    ).toBe(true);
    const refused = await budgets.reserve({ jobId: randomUUID(), owner: { id: a, role: 'member' }, tokens: 21, limits: la });
    expect(refused).toMatchObject({ ok: false, refusal: { period: 'day', source: 'role', limitTokens: 100, usedTokens: 80, requestedTokens: 21 } });
    expect(
      (await budgets.reserve({ jobId: randomUUID(), owner: { id: c, role: 'member' }, tokens: 250, limits: resolveLimits(rules, { id: c, role: 'member' }) }))
        .ok,
    ).toBe(true);
  });

  it('refuses on the month limit when the day has room', async () => {
    const a = randomUUID();
    const limits = { day: { limitTokens: 1000, source: 'user' as const }, month: { limitTokens: 50, source: 'role' as const } };
    const r = await budgets.reserve({ jobId: randomUUID(), owner: { id: a, role: 'member' }, tokens: 60, limits });
    expect(r).toMatchObject({ ok: false, refusal: { period: 'month', limitTokens: 50 } });
  });

  it('is idempotent per job: a repeated reservation charges once, and settle moves the counters by actual − reserved', async () => {
    const a = randomUUID();
    const jobId = randomUUID();
    const none = { day: null, month: null };
    await budgets.reserve({ jobId, owner: { id: a, role: 'member' }, tokens: 40, limits: none });
    await budgets.reserve({ jobId, owner: { id: a, role: 'member' }, tokens: 40, limits: none });
    expect((await budgets.usage(a)).day.usedTokens).toBe(40);
    await budgets.settle({ jobId, ownerId: a, tokens: 25 });
    expect(await budgets.usage(a)).toMatchObject({ day: { usedTokens: 25 }, month: { usedTokens: 25 } });
  });

  it('charges a job that was never reserved as it streams, and stops it at the limit', async () => {
    const u = await stack.user('member');
    await setBudget(u, 100);
    const jobId = randomUUID();
    const guard = await budgets.guards(async () => ({ id: u.id, role: 'member' })).open(jobId, 10);
    expect(guard.maxCompletionTokens).toBe(90);
    await guard.check(50);
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(60);
    await expect(guard.check(95)).rejects.toMatchObject({ code: 'BUDGET_EXHAUSTED' });
    await budgets.settle({ jobId, ownerId: u.id, tokens: 70 });
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(70);
  });

  it('validates budget rules and lists them for admins only', async () => {
    const u = await stack.user('member');
    expect(
      (await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'role', subject: 'wizard', period: 'day', limitTokens: 5 } })).status,
    ).toBe(400);
    // A user id of the right form that names nobody: 404, as for any other object that does not exist.
    expect(
      (await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: randomUUID(), period: 'day', limitTokens: 5 } })).status,
    ).toBe(404);
    // Nor the platform's own system user, which owns its probes and signs in as no one.
    expect(
      (
        await stack.request('PUT', '/v1/admin/budgets', {
          user: admin,
          body: { scope: 'user', subject: '00000000-0000-4000-8000-000000000000', period: 'day', limitTokens: 5 },
        })
      ).status,
    ).toBe(404);
    expect(
      (await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: 'not-a-uuid', period: 'day', limitTokens: 5 } })).status,
    ).toBe(400);
    expect(
      (await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: u.id, period: 'week', limitTokens: 5 } })).status,
    ).toBe(400);
    const set = await setBudget(u, 1234, 'month');
    expect(set).toMatchObject({ scope: 'user', subject: u.id, period: 'month', limitTokens: 1234, updatedBy: admin.id });
    const list = await stack.request('GET', `/v1/admin/budgets?scope=user&subject=${u.id}`, { user: admin });
    expect(list.json.items).toEqual([set]);
    expect((await stack.request('GET', '/v1/admin/budgets', { user: await stack.user('operator') })).status).toBe(403);
    expect((await stack.request('PUT', '/v1/admin/budgets', { user: u, body: { scope: 'user', subject: u.id, period: 'day', limitTokens: 1e9 } })).status).toBe(
      403,
    );
    const audit = await stack.api.db('audit_events').where({ action: 'admin.action', target_id: `user:${u.id}:month` });
    expect(audit).toEqual([expect.objectContaining({ outcome: 'success', actor_id: admin.id })]);
    await setBudget(u, null, 'month');
  });
});
