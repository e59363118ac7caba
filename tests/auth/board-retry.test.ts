/**
 * The queue board's write buttons that would bypass a job's record: a retry
 * goes through the product's retry (the record is reset and the job runs
 * again, or the product's refusal is the answer), and adding a job or
 * changing its payload is refused, since only POST /v1/jobs records a job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let admin: TestUser;
let member: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: ['system'] });
  admin = await stack.user('admin');
  member = await stack.user('member');
});
afterAll(() => stack?.stop());

const board = (method: string, path: string, body?: unknown) => stack.request(method, `/admin/queues${path}`, { user: admin, body });

/** A system.ping that is cancelled while it holds: its record says cancelled, BullMQ's copy has failed. */
async function cancelledPing(): Promise<string> {
  const job = (await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'system.ping', input: { holdMs: 1_500 } } })).json;
  await expect.poll(async () => (await stack.request('GET', `/v1/jobs/${job.id}`, { user: member })).json.state, { timeout: 30_000 }).toBe('active');
  expect((await stack.request('POST', `/v1/jobs/${job.id}/cancel`, { user: member })).status).toBeLessThan(300);
  await expect.poll(async () => (await stack.request('GET', `/v1/jobs/${job.id}`, { user: member })).json.state, { timeout: 30_000 }).toBe('cancelled');
  await expect.poll(async () => (await stack.api.jobs.queues.system.getJob(job.id))?.getState(), { timeout: 30_000 }).toBe('failed');
  return job.id;
}

describe('the board retry', () => {
  it('of one job runs it again through the product: the record is reset and the job completes as a second attempt', async () => {
    const id = await cancelledPing();
    // A cancelled job may run again: no client may keep its answer without asking.
    expect((await stack.request('GET', `/v1/jobs/${id}`, { user: member })).headers.get('cache-control')).toBe('no-cache');
    const r = await board('PUT', `/api/queues/system/${id}/retry`);
    expect(r.status).toBe(204);
    const done = await stack.waitForJob(id, member);
    expect(done).toMatchObject({ state: 'completed', result: { attempt: 2 } });
  });

  it('of a job the product will not retry is the product’s refusal, and nothing runs', async () => {
    const job = (await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'system.ping', input: { echo: 'once' } } })).json;
    expect((await stack.waitForJob(job.id, member)).state).toBe('completed');
    expect((await stack.request('GET', `/v1/jobs/${job.id}`, { user: member })).headers.get('cache-control')).toBe('private, max-age=60');
    const r = await board('PUT', `/api/queues/system/${job.id}/retry`);
    expect(r.status).toBe(409);
    expect(r.json.code).toBe('INVALID_STATE');
    expect((await stack.request('GET', `/v1/jobs/${job.id}`, { user: member })).json).toMatchObject({ state: 'completed', result: { attempt: 1 } });
  });

  it('of every failed job of a queue retries each through the product and says how many', async () => {
    const ids = [await cancelledPing(), await cancelledPing()];
    const r = await board('PUT', '/api/queues/system/retry/failed');
    expect(r.status).toBe(200);
    expect(r.json.retried).toBeGreaterThanOrEqual(2);
    for (const id of ids) expect(await stack.waitForJob(id, member)).toMatchObject({ state: 'completed', result: { attempt: 2 } });
    const completed = await board('PUT', '/api/queues/system/retry/completed');
    expect(completed.status).toBe(409);
  });
});

describe('board writes without a record', () => {
  it('refuses adding a job and changing a job’s payload, and queues nothing', async () => {
    const before = await stack.api.jobs.queues.system.getJobCounts('waiting', 'prioritized', 'delayed');
    const add = await board('POST', '/api/queues/system/add', { name: 'system.ping', data: {}, options: {} });
    expect(add.status).toBe(403);
    expect(add.json.code).toBe('FORBIDDEN');
    const job = (await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'system.ping', input: { echo: 'kept' } } })).json;
    const edit = await board('PATCH', `/api/queues/system/${job.id}/update-data`, { jobData: { echo: 'changed' } });
    expect(edit.status).toBe(403);
    expect((await stack.waitForJob(job.id, member)).result.echo).toBe('kept');
    expect(await stack.api.jobs.queues.system.getJobCounts('waiting', 'prioritized', 'delayed')).toEqual(before);
  });
});
