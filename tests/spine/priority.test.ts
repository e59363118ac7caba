import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { until } from '../support/until.ts';

describe('priorities', () => {
  let stack: Stack;
  let user: TestUser;

  beforeAll(async () => {
    // One system worker slot, so order is observable; aging slow enough not to interfere.
    stack = await startStack({ workers: false, env: { PARLEY_CONCURRENCY: 'system=1', PARLEY_AGING_MS: '60000' } });
    user = await stack.user('operator');
  });
  afterAll(() => stack?.stop());

  it('runs an interactive job ahead of a 200-job batch backlog, and the batch still completes', async () => {
    const batch: string[] = [];
    for (let i = 0; i < 200; i++) {
      const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: `b${i}`, holdMs: 5 }, priority: 'batch' } });
      batch.push(r.json.id);
    }
    const { startWorkers } = await import('../../workers/main.ts');
    const workers = await startWorkers(stack.env, { queues: ['system'] });
    try {
      // Once the worker is into the backlog (a few batch jobs done, most still waiting), submit the interactive job.
      await until(
        'the worker to be into the backlog',
        async () => Number((await stack.api.db('jobs').whereIn('id', batch).where('state', 'completed').count({ n: '*' }))[0]!.n) >= 5,
      );
      const hot = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'hot' }, priority: 'interactive' } });
      const hotJob = await stack.waitForJob(hot.json.id, user);
      const hotStart = Date.parse(hotJob.timings.startedAt);
      const rows = await stack.api.db('jobs').whereIn('id', batch).select('state', 'started_at');
      const startedAfterHot = rows.filter((r: { started_at: Date | null }) => r.started_at === null || r.started_at.getTime() > hotStart).length;
      // Only the jobs already running or fetched when it arrived can precede it: it overtook the rest of the backlog.
      expect(startedAfterHot).toBeGreaterThan(100);
      for (const id of batch) expect((await stack.waitForJob(id, user)).state).toBe('completed');
    } finally {
      await workers.stop();
    }
  });
});

describe('aging', () => {
  let stack: Stack;
  let user: TestUser;

  beforeAll(async () => {
    stack = await startStack({ workers: false, env: { PARLEY_CONCURRENCY: 'system=1', PARLEY_AGING_MS: '300', PARLEY_SWEEP_INTERVAL_MS: '200' } });
    user = await stack.user('operator');
  });
  afterAll(() => stack?.stop());

  it('promotes a waiting batch job so a steady interactive stream cannot starve it', async () => {
    const { startWorkers } = await import('../../workers/main.ts');
    const workers = await startWorkers(stack.env, { queues: ['system'] });
    try {
      // Keep more interactive work queued than the single slot can drain.
      const flood: string[] = [];
      const submitMany = async (n: number) => {
        for (let i = 0; i < n; i++)
          flood.push(
            (await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { holdMs: 40 }, priority: 'interactive' } })).json.id,
          );
      };
      await submitMany(20);
      const batch = (await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'starving?' }, priority: 'batch' } })).json.id;
      let batchDone = false;
      // Submit faster than one slot drains (about 22 jobs/s), for up to ~10 s.
      for (let round = 0; round < 220 && !batchDone; round++) {
        await submitMany(3);
        await new Promise((r) => setTimeout(r, 30));
        const j = (await stack.request('GET', `/v1/jobs/${batch}`, { user })).json;
        batchDone = j.state === 'completed';
      }
      expect(batchDone).toBe(true);
      const promoted = (await stack.request('GET', `/v1/jobs/${batch}`, { user })).json;
      expect(promoted.priority).not.toBe('batch');
      // Interactive work was still waiting when the batch job ran: it did not merely run after the flood drained.
      const waiting = await stack.api.db('jobs').whereIn('id', flood).where('state', 'queued').count({ n: '*' });
      expect(Number(waiting[0]!.n)).toBeGreaterThan(0);
      for (const id of flood) await stack.waitForJob(id, user);
    } finally {
      await workers.stop();
    }
  });
});

describe('aging within the role', () => {
  let stack: Stack;
  const submitted: { id: string; user: TestUser }[] = [];

  beforeAll(async () => {
    // A worker for the system queue only: its sweeper ages, and the chats below stay queued in the llm queue.
    stack = await startStack({ workers: ['system'], env: { PARLEY_AGING_MS: '300', PARLEY_SWEEP_INTERVAL_MS: '200' } });
  });
  afterAll(async () => {
    for (const j of submitted) await stack.request('DELETE', `/v1/jobs/${j.id}`, { user: j.user });
    await stack?.stop();
  });

  const chat = async (user: TestUser, priority: string) => {
    const r = await stack.request('POST', '/v1/jobs', {
      user,
      body: { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Say hello.' }], options: { num_predict: 8 } }, priority },
    });
    expect(r.status).toBe(202);
    submitted.push({ id: r.json.id, user });
    return r.json.id as string;
  };
  const priorityOf = async (id: string, user: TestUser) => (await stack.request('GET', `/v1/jobs/${id}`, { user })).json.priority as string;

  // Issue (outside test): members may ask for normal and batch only, yet after two aging periods their queued jobs
  // ran as interactive, so under a backlog an operator's fresh interactive job queued behind them.
  it("never ages a job above the best class its owner's role may ask for: a member's stops at normal", async () => {
    const member = await stack.user('member');
    const operator = await stack.user('operator');
    const memberNormal = await chat(member, 'normal');
    const memberBatch = await chat(member, 'batch');
    const operatorNormal = await chat(operator, 'normal');
    // The operator's job, queued after the member's normal one, reaches interactive: aging to interactive ran, and
    // took the queued normal jobs oldest first. The member's batch job still moves up, within the member's classes.
    await until('the operator job to age to interactive', async () => (await priorityOf(operatorNormal, operator)) === 'interactive');
    await until("the member's batch job to age to normal", async () => (await priorityOf(memberBatch, member)) === 'normal');
    expect(await priorityOf(memberNormal, member)).toBe('normal');
    // In BullMQ too: normal is priority 2, interactive 1.
    const queue = stack.api.jobs.queues.llm;
    expect((await queue.getJob(memberNormal))!.priority).toBe(2);
    expect((await queue.getJob(operatorNormal))!.priority).toBe(1);
  });
});
