/**
 * A UUID is the same id in any letter case (RFC 9562 reads them case-
 * insensitively). Postgres matched an upper-case id, but Redis keys, BullMQ
 * ids and MongoDB did not: a live job's events never came, a cancel was lost,
 * a budget was stored and never applied. Ids are now lower-cased where they
 * enter, so every store sees the one canonical form.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let member: TestUser;
let admin: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: ['system'] });
  [member, admin] = await Promise.all([stack.user('operator'), stack.user('admin')]);
});
afterAll(() => stack?.stop());

describe('upper-case ids', () => {
  it('name the same job everywhere: read, events, cancel of a running job', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'system.ping', input: { echo: 'case', holdMs: 60_000 } } });
    expect(r.status).toBe(202);
    const upper = (r.json.id as string).toUpperCase();
    const read = await stack.request('GET', `/v1/jobs/${upper}`, { user: member });
    expect(read.status).toBe(200);
    expect(read.json.id).toBe(r.json.id);
    for (let i = 0; i < 200 && (await stack.request('GET', `/v1/jobs/${r.json.id}`, { user: member })).json.state !== 'active'; i++)
      await new Promise((res) => setTimeout(res, 50));
    // The stream follows the job's own key, and the cancel reaches the worker running it: the stream ends cancelled.
    const events = readSse(`http://127.0.0.1:${stack.api.port}/v1/jobs/${upper}/events`, member.auth, { timeoutMs: 30_000 });
    expect([200, 202]).toContain((await stack.request('DELETE', `/v1/jobs/${upper}`, { user: member })).status);
    const got = await events;
    expect(got.status).toBe(200);
    expect(got.events.at(-1)).toMatchObject({ event: 'finished', data: expect.objectContaining({ state: 'cancelled' }) });
    expect((await stack.waitForJob(r.json.id, member, 30_000)).state).toBe('cancelled');
  });

  it('apply a budget set for an upper-case user id', async () => {
    const u = await stack.user('member');
    const put = await stack.request('PUT', '/v1/admin/budgets', {
      user: admin,
      body: { scope: 'user', subject: u.id.toUpperCase(), period: 'day', limitTokens: 1234 },
    });
    expect(put.status).toBe(200);
    expect(put.json.subject).toBe(u.id);
    const usage = await stack.request('GET', '/v1/usage', { user: u });
    expect(usage.json.budgets).toEqual(expect.arrayContaining([expect.objectContaining({ limitTokens: 1234 })]));
  });
});
