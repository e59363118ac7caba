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
