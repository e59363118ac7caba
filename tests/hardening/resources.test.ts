/**
 * Issue 16, "every resource bounded", for jobs: input and result sizes per
 * kind, results never loaded by lists, priority classes per role, system.ping
 * holds, admission run again on retry, and embed.batch's budget checked while
 * it runs. Small bounds (PARLEY_JOB_LIMITS) keep the cases cheap; the real
 * workers and the real embedding model run every job.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimatePromptTokens } from '../../platform/usage/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let member: TestUser;
let operator: TestUser;
let admin: TestUser;

beforeAll(async () => {
  stack = await startStack({
    env: {
      PARLEY_JOB_LIMITS: JSON.stringify({
        'system.ping': { resultBytes: 300 },
        'embed.batch': { resultBytes: 200_000 },
        'code.chunk': { inputBytes: 64 * 1024 },
      }),
    },
  });
  [member, operator, admin] = await Promise.all([stack.user('member'), stack.user('operator'), stack.user('admin')]);
});
afterAll(() => stack?.stop());

const jobsOf = (u: TestUser) =>
  stack.api
    .db('jobs')
    .where({ owner_id: u.id })
    .count<{ n: string }[]>('* as n')
    .then((r) => Number(r[0]!.n));
const submit = (u: TestUser, body: unknown) => stack.request('POST', '/v1/jobs', { user: u, body });

async function setBudget(u: TestUser, limitTokens: number) {
  const r = await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: u.id, period: 'day', limitTokens } });
  expect(r.status).toBe(200);
}

describe('payload and result sizes per kind', () => {
  it("refuses an input over its kind's bound with 422 LIMIT_EXCEEDED naming `input`, and records nothing", async () => {
    const before = await jobsOf(member);
    const r = await submit(member, { kind: 'code.chunk', input: { files: [{ path: 'big.ts', content: `// ${'x'.repeat(70 * 1024)}\n` }] } });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'inputBytes', limit: 64 * 1024 });
    expect(r.json.errors).toEqual([{ path: 'input', message: expect.stringContaining('65536') }]);
    expect(await jobsOf(member)).toBe(before);
  });

  it("fails a job whose result is over its kind's bound RESULT_TOO_LARGE, not retried, and keeps no result", async () => {
    const r = await submit(member, { kind: 'system.ping', input: { echo: 'e'.repeat(400) } });
    expect(r.status).toBe(202);
    const job = await stack.waitForJob(r.json.id, member);
    expect(job.state).toBe('failed');
    expect(job.error).toMatchObject({ code: 'RESULT_TOO_LARGE', details: { limitBytes: 300 } });
    expect(job.attempts).toBe(1);
    expect(job.result).toBeNull();
    const row = await stack.api.db('jobs').where({ id: r.json.id }).first('result');
    expect(row.result).toBeNull();
  });

  it('stops an embed.batch as soon as its vectors are projected past the bound, before embedding the rest', async () => {
    const texts = Array.from({ length: 48 }, (_, i) => `text ${i} ${randomUUID()}`);
    const r = await submit(member, { kind: 'embed.batch', input: { texts, batchSize: 8, cache: 'bypass' } });
    expect(r.status).toBe(202);
    const job = await stack.waitForJob(r.json.id, member);
    expect(job.state).toBe('failed');
    // A vector of 384 dimensions is about 8 KB of JSON: 48 of them cannot fit in 200 000 bytes, as the first 8 show.
    expect(job.error).toMatchObject({ code: 'RESULT_TOO_LARGE', details: { embedded: 8, limitBytes: 200_000 } });
    expect(job.error.details.projectedBytes).toBeGreaterThan(200_000);
  });
});

describe('lists never load results', () => {
  it('lists jobs without their results, saying whether each has one; GET of the job has it', async () => {
    const r = await submit(member, { kind: 'system.ping', input: { echo: 'listed' } });
    const done = await stack.waitForJob(r.json.id, member);
    expect(done.result).toMatchObject({ echo: 'listed' });
    const list = await stack.request('GET', '/v1/jobs?kind=system.ping&limit=200', { user: member });
    expect(list.status).toBe(200);
    const item = list.json.items.find((j: any) => j.id === r.json.id);
    expect(item).toMatchObject({ id: r.json.id, state: 'completed', hasResult: true });
    expect(item).not.toHaveProperty('result');
    for (const j of list.json.items) expect(j).not.toHaveProperty('result');
  });
});

describe('priority classes per role', () => {
  it('refuses a member asking for `interactive` with 422 naming the cap, and records nothing', async () => {
    const before = await jobsOf(member);
    const r = await submit(member, { kind: 'system.ping', input: {}, priority: 'interactive' });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'priorities', limit: 'normal, batch' });
    expect(r.json.errors[0].path).toBe('priority');
    expect(await jobsOf(member)).toBe(before);
  });

  it("lowers a member's chat from its kind's default `interactive` to `normal`; an operator keeps `interactive`", async () => {
    const chat = { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 2 } } };
    const m = await submit(member, chat);
    const o = await submit(operator, { ...chat, priority: 'interactive' });
    expect([m.status, o.status]).toEqual([202, 202]);
    expect((await stack.api.db('jobs').where({ id: m.json.id }).first('priority')).priority).toBe('normal');
    expect((await stack.api.db('jobs').where({ id: o.json.id }).first('priority')).priority).toBe('interactive');
    await Promise.all([stack.waitForJob(m.json.id, member), stack.waitForJob(o.json.id, operator)]);
  });
});

describe('system.ping holds a worker slot only as long as the role allows', () => {
  it('refuses a member holding one for a minute with 422 maxPingHoldMs; an operator may', async () => {
    const before = await jobsOf(member);
    const r = await submit(member, { kind: 'system.ping', input: { holdMs: 60_000 } });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxPingHoldMs', limit: 10000 });
    expect(r.json.errors[0].path).toBe('input.holdMs');
    expect(await jobsOf(member)).toBe(before);
    const o = await submit(operator, { kind: 'system.ping', input: { holdMs: 60_000 } });
    expect(o.status).toBe(202);
    expect((await stack.request('DELETE', `/v1/jobs/${o.json.id}`, { user: operator })).status).toBeLessThan(300);
  });
});

describe('retry runs admission again', () => {
  it("refuses a retry the owner's budget cannot hold with 429 BUDGET_EXHAUSTED, and leaves the job as it was", async () => {
    const u = await stack.user('member');
    const r = await submit(u, { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Count to three.' }], options: { num_predict: 64 } } });
    expect(r.status).toBe(202);
    const cancelled = await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user: u });
    expect(cancelled.status).toBeLessThan(300);
    const job = await stack.waitForJob(r.json.id, u);
    expect(job.state).toBe('cancelled');
    await setBudget(u, 10);
    const retry = await stack.request('POST', `/v1/jobs/${r.json.id}/retry`, { user: u });
    expect(retry.status).toBe(429);
    expect(retry.json.code).toBe('BUDGET_EXHAUSTED');
    expect(retry.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await stack.request('GET', `/v1/jobs/${r.json.id}`, { user: u })).json.state).toBe('cancelled');
  });

  it("applies the owner's caps, not the operator's, when an operator retries a member's job", async () => {
    const u = await stack.user('member');
    const r = await submit(u, { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Hello there.' }], options: { num_predict: 64 } } });
    await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user: u });
    await stack.waitForJob(r.json.id, u);
    await setBudget(u, 10);
    const retry = await stack.request('POST', `/v1/jobs/${r.json.id}/retry`, { user: operator });
    expect(retry.status).toBe(429);
    expect(retry.json.code).toBe('BUDGET_EXHAUSTED');
  });
});

describe("embed.batch's budget is checked while it runs", () => {
  it('stops BUDGET_EXHAUSTED between calls once real usage passes the budget the estimate fitted in', async () => {
    const u = await stack.user('member');
    // Four characters a text: the estimate is one token each, but the model reads three or more (with its markers).
    const texts = Array.from({ length: 20 }, (_, i) => `w${String(i).padStart(3, '0')}`);
    const estimate = estimatePromptTokens(texts.reduce((n, t) => n + t.length, 0));
    await setBudget(u, estimate);
    const r = await submit(u, { kind: 'embed.batch', input: { texts, batchSize: 2, cache: 'bypass' } });
    expect(r.status).toBe(202);
    const job = await stack.waitForJob(r.json.id, u);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('BUDGET_EXHAUSTED');
    // Stopped between calls: not every text was embedded.
    expect(job.progress.done).toBeLessThan(texts.length);
    expect((await stack.request('GET', '/v1/usage', { user: u })).status).toBe(200);
  });
});

describe('code.chunk file names', () => {
  for (const path of ['../../etc/passwd', '/etc/shadow', 'src/../../x.ts', './a.ts', 'a//b.ts', 'a\\b.ts']) {
    it(`refuses ${JSON.stringify(path)} with 400 naming the field: names are relative, normalised paths`, async () => {
      const before = await jobsOf(member);
      const r = await submit(member, {
        kind: 'code.chunk',
        input: {
          files: [
            { path: 'ok/fine.ts', content: 'let a = 1;' },
            { path, content: 'let b = 2;' },
          ],
        },
      });
      expect(r.status).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
      expect(r.json.errors).toEqual([{ path: 'input.files.1.path', message: expect.stringContaining('relative') }]);
      expect(await jobsOf(member)).toBe(before);
    });
  }
});
