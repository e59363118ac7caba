/**
 * Members see and act on their own jobs only; another member's job is 404
 * (never 403, so its existence does not leak). Operators see everything and
 * may cancel or retry, and doing so to someone else's job is audited.
 * No workers: jobs stay queued, so a cancel is immediate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { pingJob } from './helpers.ts';

let stack: Stack;
let alice: TestUser;
let bob: TestUser;
let operator: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  alice = await stack.user('member');
  bob = await stack.user('member');
  operator = await stack.user('operator');
});
afterAll(() => stack?.stop());

async function alicesJob(): Promise<string> {
  const r = await stack.request('POST', '/v1/jobs', { user: alice, body: pingJob });
  expect(r.status).toBe(202);
  return r.json.id as string;
}

describe("another member's job", () => {
  it('is 404 on GET', async () => {
    const id = await alicesJob();
    const r = await stack.request('GET', `/v1/jobs/${id}`, { user: bob });
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('JOB_NOT_FOUND');
  });

  it('is 404 on DELETE, and the job is not cancelled', async () => {
    const id = await alicesJob();
    const r = await stack.request('DELETE', `/v1/jobs/${id}`, { user: bob });
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('JOB_NOT_FOUND');
    expect((await stack.request('GET', `/v1/jobs/${id}`, { user: alice })).json.state).toBe('queued');
  });

  it('is 404 on retry', async () => {
    const id = await alicesJob();
    await stack.request('DELETE', `/v1/jobs/${id}`, { user: alice });
    const r = await stack.request('POST', `/v1/jobs/${id}/retry`, { user: bob });
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('JOB_NOT_FOUND');
    expect((await stack.request('GET', `/v1/jobs/${id}`, { user: alice })).json.state).toBe('cancelled');
  });

  it('is 404 on its SSE events', async () => {
    const id = await alicesJob();
    const r = await readSse(`${stack.base}/v1/jobs/${id}/events`, bob.auth, { timeoutMs: 3000 });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body!).code).toBe('JOB_NOT_FOUND');
  });

  it('answers exactly like a job that does not exist', async () => {
    const id = await alicesJob();
    const theirs = await stack.request('GET', `/v1/jobs/${id}`, { user: bob });
    const none = await stack.request('GET', `/v1/jobs/00000000-0000-4000-8000-${id.slice(-12)}`, { user: bob });
    const strip = (b: Record<string, unknown>) => ({ ...b, requestId: undefined, instance: undefined });
    expect(strip(theirs.json)).toEqual(strip(none.json));
  });

  it('is left out of the list', async () => {
    const id = await alicesJob();
    const r = await stack.request('GET', '/v1/jobs?limit=100', { user: bob });
    expect(r.json.items.map((j: { id: string }) => j.id)).not.toContain(id);
  });
});

describe('operators', () => {
  it("see a member's job", async () => {
    const id = await alicesJob();
    const r = await stack.request('GET', `/v1/jobs/${id}`, { user: operator });
    expect(r.status).toBe(200);
    expect(r.json.owner).toBe(alice.id);
  });

  it("list members' jobs", async () => {
    const id = await alicesJob();
    const r = await stack.request('GET', '/v1/jobs?limit=100', { user: operator });
    expect(r.json.items.map((j: { id: string }) => j.id)).toContain(id);
  });

  it("cancel a member's job", async () => {
    const id = await alicesJob();
    const r = await stack.request('DELETE', `/v1/jobs/${id}`, { user: operator });
    expect(r.status).toBe(200);
    expect(r.json.state).toBe('cancelled');
  });

  it("leave a job.cancel_other audit row when cancelling a member's job", async () => {
    const id = await alicesJob();
    await stack.request('DELETE', `/v1/jobs/${id}`, { user: operator, headers: { 'user-agent': 'ops-console/1.0' } });
    const rows = await stack.api.db('audit_events').where({ action: 'job.cancel_other', target_id: id });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      outcome: 'success',
      actor_id: operator.id,
      actor_name: operator.username,
      target_type: 'job',
      user_agent: 'ops-console/1.0',
    });
    expect(rows[0].ip).toBeTruthy();
    expect(rows[0].details).toMatchObject({ owner: alice.id });
  });

  it("leave a job.retry_other audit row when retrying a member's job", async () => {
    const id = await alicesJob();
    await stack.request('DELETE', `/v1/jobs/${id}`, { user: alice });
    const r = await stack.request('POST', `/v1/jobs/${id}/retry`, { user: operator });
    expect(r.status).toBe(202);
    const rows = await stack.api.db('audit_events').where({ action: 'job.retry_other', target_id: id });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'success', actor_id: operator.id, target_type: 'job' });
  });

  it('leave no job.cancel_other row when cancelling their own job', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user: operator, body: pingJob });
    await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user: operator });
    expect(await stack.api.db('audit_events').where({ action: 'job.cancel_other', target_id: r.json.id })).toHaveLength(0);
  });
});
