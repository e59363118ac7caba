/**
 * Per-role caps at submit: each refusal is 422 LIMIT_EXCEEDED naming the cap
 * and its limit, and leaves nothing behind (no row, nothing queued). Runs
 * without workers so admitted jobs stay queued (the concurrency cap counts them).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../platform/config.ts';
import { createBudgets, estimatePromptTokens } from '../../platform/usage/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

const chatModel = process.env.PARLEY_CHAT_MODEL ?? 'smollm2:135m';
const host = process.env.OLLAMA_HOST!.includes('://') ? process.env.OLLAMA_HOST! : `http://${process.env.OLLAMA_HOST}`;
/** Installed for this suite, and not on the member allow-list. */
const extra = `parley-test-${randomUUID().slice(0, 8)}:caps`;
const caps = { member: { models: [chatModel, 'all-minilm'], maxNumPredict: 64, maxNumCtx: 2048, maxPromptChars: 200, maxConcurrentJobs: 2 } };

let stack: Stack;
const users: TestUser[] = [];
const member = async () => {
  const u = await stack.user('member');
  users.push(u);
  return u;
};

beforeAll(async () => {
  const made = await fetch(`${host}/api/create`, { method: 'POST', body: JSON.stringify({ model: extra, from: chatModel, stream: false }) });
  expect(made.status).toBe(200);
  stack = await startStack({ workers: false, env: { PARLEY_ROLE_CAPS: JSON.stringify(caps) } });
});
afterAll(async () => {
  // No worker ran them: cancel what this suite left queued, so no other suite's sweeper adopts it.
  for (const u of users) {
    for (const row of await stack.api.db('jobs').where({ owner_id: u.id, state: 'queued' }).select('id'))
      await stack.request('DELETE', `/v1/jobs/${row.id}`, { user: u });
  }
  await fetch(`${host}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: extra }) }).catch(() => {});
  await stack?.stop();
});

const chat = (over: Record<string, unknown> = {}, options: Record<string, unknown> = {}) => ({
  kind: 'llm.chat',
  input: { messages: [{ role: 'user', content: 'Say hello.' }], options: { temperature: 0, ...options }, ...over },
});

async function jobsOf(u: TestUser): Promise<number> {
  const [row] = await stack.api.db('jobs').where({ owner_id: u.id }).count({ n: '*' });
  return Number(row!.n);
}

async function queued(): Promise<number> {
  const c = await stack.api.jobs.queues.llm.getJobCounts('wait', 'prioritized', 'delayed');
  return Object.values(c).reduce((a, b) => a + b, 0);
}

/** Submits, expects 422 LIMIT_EXCEEDED for `cap`, and checks that nothing was recorded or queued. */
async function refused(u: TestUser, body: unknown, cap: string, limit: string | number) {
  const [rows, inQueue] = [await jobsOf(u), await queued()];
  const r = await stack.request('POST', '/v1/jobs', { user: u, body });
  expect(r.status).toBe(422);
  expect(r.headers.get('content-type')).toContain('application/problem+json');
  expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', status: 422, cap, limit });
  expect(r.json.detail).toContain(cap);
  expect(r.json.detail).toContain(String(limit));
  expect(await jobsOf(u)).toBe(rows);
  expect(await queued()).toBe(inQueue);
  return r.json;
}

describe('role caps at submit', () => {
  it('refuses an installed model outside the role allow-list', async () => {
    const u = await member();
    const p = await refused(u, chat({ model: extra }), 'models', `${chatModel}, all-minilm`);
    expect(p.errors[0].path).toBe('input.model');
    await refused(u, { kind: 'embed.batch', input: { model: extra, texts: ['a'] } }, 'models', `${chatModel}, all-minilm`);
    // Names match in Ollama's canonical form: all-minilm is all-minilm:latest.
    expect(
      (await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'embed.batch', input: { model: 'all-minilm:latest', texts: ['a'] } } })).status,
    ).toBe(202);
  });

  it('refuses a model no host has installed with 400, whoever names it (not a job that fails later)', async () => {
    const u = await member();
    const op = await stack.user('operator');
    for (const who of [u, op]) {
      const r = await stack.request('POST', '/v1/jobs', { user: who, body: chat({ model: 'no-such-model:1b' }) });
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'input.model', message: 'not an installed model' }] });
      expect(await jobsOf(who)).toBe(0);
    }
  });

  // Issue 16: members got past the allow-list with aliases of an installed model.
  it('compares names in canonical form: library/, the default registry host and another case are the same model', async () => {
    const u = await member();
    for (const alias of [`library/${extra}`, `registry.ollama.ai/library/${extra}`, extra.toUpperCase(), `Library/${extra}`]) {
      await refused(u, chat({ model: alias }), 'models', `${chatModel}, all-minilm`);
    }
    // An alias of an allowed model is that model.
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: chat({ model: `registry.ollama.ai/library/${chatModel}` }) })).status).toBe(202);
  });

  // Issue 16: `model: "../../etc/passwd"` was accepted (202).
  it('refuses names Ollama cannot have at the edge with 400, before anything is recorded', async () => {
    const u = await member();
    for (const model of ['../../etc/passwd', 'YZFk7:', 'n7-ReLG93/..f7uljl8tde2', 'a/b/c/d', 'https://evil.example/x/y:1']) {
      const r = await stack.request('POST', '/v1/jobs', { user: u, body: chat({ model }) });
      expect(r.status, model).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
      expect(r.json.errors[0].path).toBe('input.model');
    }
    expect(await jobsOf(u)).toBe(0);
  });

  // Issue 16: members could set keep_alive -1 (keep the model loaded forever).
  it("bounds keep_alive by the role's maxKeepAliveS: forever and long durations are refused to members", async () => {
    const u = await member();
    for (const keepAlive of [-1, '-1s', '2h', 3600]) {
      const p = await refused(u, chat({ keep_alive: keepAlive }), 'maxKeepAliveS', 1800);
      expect(p.errors[0].path).toBe('input.keep_alive');
    }
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: chat({ keep_alive: '10m' }) })).status).toBe(202);
    // Operators (default cap -1) may keep a model loaded.
    const op = await stack.user('operator');
    users.push(op);
    expect((await stack.request('POST', '/v1/jobs', { user: op, body: chat({ keep_alive: -1 }) })).status).toBe(202);
  });

  it('refuses num_predict above the cap', async () => {
    const p = await refused(await member(), chat({}, { num_predict: 65 }), 'maxNumPredict', 64);
    expect(p.errors[0].path).toBe('input.options.num_predict');
  });

  it('refuses num_ctx above the cap', async () => {
    await refused(await member(), chat({}, { num_ctx: 4096 }), 'maxNumCtx', 2048);
  });

  it('refuses a prompt longer than the cap, for chats and embedding batches', async () => {
    const u = await member();
    await refused(
      u,
      chat({
        messages: [
          { role: 'system', content: 'x'.repeat(100) },
          { role: 'user', content: 'y'.repeat(101) },
        ],
      }),
      'maxPromptChars',
      200,
    );
    await refused(u, { kind: 'embed.batch', input: { texts: ['a'.repeat(150), 'b'.repeat(51)] } }, 'maxPromptChars', 200);
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: chat({ messages: [{ role: 'user', content: 'z'.repeat(200) }] }) })).status).toBe(202);
  });

  it('refuses a metered job beyond the concurrent-jobs cap until one finishes', async () => {
    const u = await member();
    const first = await stack.request('POST', '/v1/jobs', { user: u, body: chat() });
    const second = await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'embed.batch', input: { texts: ['a'] } } });
    expect([first.status, second.status]).toEqual([202, 202]);
    // Unmetered work does not count and is not capped.
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: {} } })).status).toBe(202);
    await refused(u, chat(), 'maxConcurrentJobs', 2);
    expect((await stack.request('DELETE', `/v1/jobs/${first.json.id}`, { user: u })).json.state).toBe('cancelled');
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: chat() })).status).toBe(202);
  });

  it('never accepts more than the cap when many submits race for the last slots', async () => {
    const u = await member();
    const answers = await Promise.all(Array.from({ length: 12 }, () => stack.request('POST', '/v1/jobs', { user: u, body: chat() })));
    const accepted = answers.filter((a) => a.status === 202);
    const refusedAnswers = answers.filter((a) => a.status !== 202);
    // Exactly the free slots are taken: never more, and a race does not leave them empty either.
    expect(accepted).toHaveLength(caps.member.maxConcurrentJobs);
    for (const r of refusedAnswers) expect(r.json).toMatchObject({ status: 422, code: 'LIMIT_EXCEEDED', cap: 'maxConcurrentJobs' });
    // Nothing of a refused submit is left: the rows are exactly the accepted jobs, and each is queued in BullMQ.
    const rows = await stack.api.db('jobs').where({ owner_id: u.id }).select('id');
    expect(rows.map((r) => r.id).sort()).toEqual(accepted.map((a) => a.json.id).sort());
    const queue = stack.api.jobs.queues.llm;
    for (const a of accepted) expect(await queue.getJob(a.json.id)).toBeTruthy();
    // The budget is reserved before the insert refuses; a refused submit releases it: the user's counter holds
    // the accepted jobs' reservations only (prompt estimate + the pinned num_predict each).
    const budgets = createBudgets({ db: stack.api.db, redis: stack.api.redis, prefix: stack.prefix });
    const perJob = estimatePromptTokens('Say hello.'.length) + caps.member.maxNumPredict;
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(accepted.length * perJob);
  });

  it('answers racing submits that share an idempotency key as one job, even when that job takes the last slot', async () => {
    const u = await member();
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: chat() })).status).toBe(202);
    const body = { ...chat(), idempotencyKey: `last-slot-${randomUUID()}` };
    const answers = await Promise.all(Array.from({ length: 8 }, () => stack.request('POST', '/v1/jobs', { user: u, body })));
    // The key's first request takes the last slot; every other one is its replay, not a refusal at the cap.
    expect(answers.map((a) => a.status).filter((s) => s >= 300)).toEqual([]);
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    expect(await jobsOf(u)).toBe(2);
  });

  /** Cancels queued jobs (no worker runs here, so each is recorded cancelled at once). */
  async function cancelAll(u: TestUser, ids: string[]) {
    for (const id of ids) expect((await stack.request('DELETE', `/v1/jobs/${id}`, { user: u })).json.state).toBe('cancelled');
  }

  const inFlight = async (u: TestUser) =>
    Number((await stack.api.db('jobs').where({ owner_id: u.id }).whereIn('state', ['queued', 'active']).count({ n: '*' }))[0]!.n);

  // Issue (outside test): a retry was not capped, so a member cancelled 16 jobs, submitted 16 more and retried the
  // first 16: 32 in flight against a cap of 16.
  it('counts a retry against the concurrent-jobs cap like a submit, and leaves a refused job as it was', async () => {
    const u = await member();
    const budgets = createBudgets({ db: stack.api.db, redis: stack.api.redis, prefix: stack.prefix });
    const perJob = estimatePromptTokens('Say hello.'.length) + caps.member.maxNumPredict;
    const first = await Promise.all([1, 2].map(() => stack.request('POST', '/v1/jobs', { user: u, body: chat() })));
    expect(first.map((r) => r.status)).toEqual([202, 202]);
    await cancelAll(
      u,
      first.map((r) => r.json.id),
    );
    const second = await Promise.all([1, 2].map(() => stack.request('POST', '/v1/jobs', { user: u, body: chat() })));
    expect(second.map((r) => r.status)).toEqual([202, 202]);

    const id = first[0]!.json.id;
    const before = await stack.api.jobs.store.get(id);
    const inQueue = await queued();
    const r = await stack.request('POST', `/v1/jobs/${id}/retry`, { user: u });
    expect(r.status).toBe(422);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', status: 422, cap: 'maxConcurrentJobs', limit: 2 });
    expect(r.json.detail).toContain('maxConcurrentJobs');
    // The record is as the cancel left it, nothing was queued, and the refused retry's reservation was released.
    expect(await stack.api.jobs.store.get(id)).toEqual(before);
    expect(await queued()).toBe(inQueue);
    expect(await inFlight(u)).toBe(2);
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(2 * perJob);

    // A free slot takes the retry.
    await cancelAll(u, [second[0]!.json.id]);
    expect((await stack.request('POST', `/v1/jobs/${id}/retry`, { user: u })).status).toBe(202);
    expect(await inFlight(u)).toBe(2);
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(2 * perJob);
  });

  it('never re-queues more retries than there are free slots when many race', async () => {
    const u = await member();
    const cancelled: string[] = [];
    for (let round = 0; round < 3; round++) {
      const ids = (await Promise.all([1, 2].map(() => stack.request('POST', '/v1/jobs', { user: u, body: chat() })))).map((r) => r.json.id as string);
      await cancelAll(u, ids);
      cancelled.push(...ids);
    }
    const answers = await Promise.all(cancelled.map((id) => stack.request('POST', `/v1/jobs/${id}/retry`, { user: u })));
    const accepted = answers.filter((a) => a.status === 202);
    expect(accepted).toHaveLength(caps.member.maxConcurrentJobs);
    for (const a of answers.filter((x) => x.status !== 202)) expect(a.json).toMatchObject({ status: 422, code: 'LIMIT_EXCEEDED', cap: 'maxConcurrentJobs' });
    expect(await inFlight(u)).toBe(caps.member.maxConcurrentJobs);
    const budgets = createBudgets({ db: stack.api.db, redis: stack.api.redis, prefix: stack.prefix });
    const perJob = estimatePromptTokens('Say hello.'.length) + caps.member.maxNumPredict;
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(accepted.length * perJob);
  });

  // Issue (outside test): of racing retries of one cancelled job, the refused ones released the reservation, keyed by
  // the job's id, that the accepted one had made, so the run went on with nothing reserved and the budget could overshoot.
  it('keeps exactly one full reservation when retries of one job race, and settles it exactly', async () => {
    const u = await member();
    const budgets = createBudgets({ db: stack.api.db, redis: stack.api.redis, prefix: stack.prefix });
    const r = await stack.request('POST', '/v1/jobs', { user: u, body: chat({}, { num_predict: 60 }) });
    expect(r.status).toBe(202);
    const perJob = estimatePromptTokens('Say hello.'.length) + 60;
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(perJob);
    await cancelAll(u, [r.json.id]);
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(0);

    const answers = await Promise.all(Array.from({ length: 6 }, () => stack.request('POST', `/v1/jobs/${r.json.id}/retry`, { user: u })));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409, 409, 409, 409, 409]);
    for (const a of answers.filter((x) => x.status === 409)) expect(a.json.code).toBe('INVALID_STATE');
    // The one run holds its whole reservation, counted once.
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(perJob);
    expect(await stack.api.redis.hget(`${stack.prefix}:{budget}:job:${r.json.id}`, 'r')).toBe(String(perJob));
    // Cancelled before it ran, it releases all of it: nothing left over, nothing released twice.
    await cancelAll(u, [r.json.id]);
    expect((await budgets.usage(u.id)).day.usedTokens).toBe(0);
  });

  it('refuses to count against the cap above READ COMMITTED, where the count could miss a racing submit', async () => {
    const count = stack.api.db.transaction(async (trx) => {
      await trx.raw('set transaction isolation level repeatable read');
      await trx.raw('select parley_owner_in_flight(?::uuid, ?::text[])', [randomUUID(), ['llm.chat']]);
    });
    await expect(count).rejects.toThrow(/needs READ COMMITTED/);
  });

  it("pins the role's num_predict bound into a chat that names none", async () => {
    const u = await member();
    const r = await stack.request('POST', '/v1/jobs', { user: u, body: chat() });
    expect(r.status).toBe(202);
    const row = await stack.api.jobs.store.get(r.json.id);
    // min(PARLEY_DEFAULT_NUM_PREDICT = 512, member maxNumPredict = 64)
    expect((row!.input as any).options).toEqual({ temperature: 0, num_predict: 64 });
  });

  it('does not bind operators by the member caps', async () => {
    const op = await stack.user('operator');
    users.push(op);
    const r = await stack.request('POST', '/v1/jobs', {
      user: op,
      body: chat({ model: extra, messages: [{ role: 'user', content: 'q'.repeat(5000) }] }, { num_predict: 1000, num_ctx: 4096 }),
    });
    expect(r.status).toBe(202);
  });

  it('rejects a malformed PARLEY_ROLE_CAPS at startup and merges a partial one over the defaults', () => {
    expect(() => loadConfig({ PARLEY_ROLE_CAPS: '{"member":' })).toThrow(/PARLEY_ROLE_CAPS is not JSON/);
    expect(() => loadConfig({ PARLEY_ROLE_CAPS: '{"member":{"maxNumPredict":0}}' })).toThrow(/PARLEY_ROLE_CAPS member.maxNumPredict/);
    expect(() => loadConfig({ PARLEY_ROLE_CAPS: '{"guest":{}}' })).toThrow(/PARLEY_ROLE_CAPS/);
    const c = loadConfig({ PARLEY_ROLE_CAPS: '{"member":{"maxNumPredict":100}}', PARLEY_CHAT_MODEL: 'a:1', PARLEY_EMBED_MODEL: 'b' });
    expect(c.roleCaps.member).toEqual({
      models: ['a:1', 'b'],
      maxNumPredict: 100,
      maxNumCtx: 8192,
      maxPromptChars: 100_000,
      maxConcurrentJobs: 16,
      maxKeepAliveS: 1800,
      priorities: ['normal', 'batch'],
      maxPingHoldMs: 10_000,
    });
    expect(c.roleCaps.admin.models).toBe('*');
  });
});
