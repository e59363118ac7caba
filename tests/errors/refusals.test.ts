/**
 * Refusals the coverage report showed untested: state transitions the job
 * lifecycle and the rooms refuse, and bad input to domain functions. Each is
 * a clear 4xx problem+json with a stable code, and changes nothing.
 *
 * No workers: jobs stay queued and rooms keep their first turn waiting, so
 * every state here is placed by the test.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { act, makeAgents, makeRoom } from '../discussions/rooms.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

const ping = { kind: 'system.ping', input: { echo: 'refusals' } };
const row = (id: string) => stack.api.db('jobs').where({ id }).first();

function expectProblem(r: { status: number; headers: Headers; json: any }, status: number, code: string) {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.headers.get('content-type')).toContain('application/problem+json');
  expect(r.json).toMatchObject({ status, code });
}

describe('job state transitions the lifecycle refuses', () => {
  it('refuses to cancel a job that is already terminal, or that does not exist', async () => {
    const id = (await stack.request('POST', '/v1/jobs', { user, body: ping })).json.id as string;
    expect((await stack.request('DELETE', `/v1/jobs/${id}`, { user })).json.state).toBe('cancelled');
    // The lifecycle itself refuses, whatever the caller checked before (a cancel racing another).
    await expect(stack.api.jobs.cancel(id)).rejects.toMatchObject({ name: 'JobRefused', code: 'INVALID_STATE', message: 'the job is already cancelled' });
    await expect(stack.api.jobs.cancel(randomUUID())).rejects.toMatchObject({ name: 'JobRefused', code: 'INVALID_STATE', message: 'no such job' });
    expect(await row(id)).toMatchObject({ state: 'cancelled', error_code: 'CANCELLED' });
  });

  it('refuses to retry a job that has not ended, and leaves it queued', async () => {
    const id = (await stack.request('POST', '/v1/jobs', { user, body: ping })).json.id as string;
    await expect(stack.api.jobs.retry(id)).rejects.toMatchObject({
      name: 'JobRefused',
      code: 'INVALID_STATE',
      message: 'only failed or cancelled jobs can be retried; this one is queued',
    });
    const r = await stack.request('POST', `/v1/jobs/${id}/retry`, { user });
    expectProblem(r, 409, 'INVALID_STATE');
    expect(await row(id)).toMatchObject({ state: 'queued', attempts: 0 });
  });

  it('answers 409 INVALID_STATE to a retry of a job whose kind is no longer served, and leaves the record as it was', async () => {
    const id = (await stack.request('POST', '/v1/jobs', { user, body: ping })).json.id as string;
    expect((await stack.request('DELETE', `/v1/jobs/${id}`, { user })).json.state).toBe('cancelled');
    // As if this deployment dropped the kind since the job ran.
    await stack.api.db('jobs').where({ id }).update({ kind: 'retired.kind' });

    const r = await stack.request('POST', `/v1/jobs/${id}/retry`, { user });
    expectProblem(r, 409, 'INVALID_STATE');
    expect(r.json.detail).toBe('Job kind retired.kind is no longer served');
    expect(await row(id)).toMatchObject({ state: 'cancelled', kind: 'retired.kind' });
    expect(await stack.api.jobs.queues.system.getJob(id)).toBeFalsy();
  });
});

describe('bad input to the job and room domain functions', () => {
  it('answers 400 to a job list cursor it did not give out', async () => {
    for (const cursor of ['not-a-cursor', Buffer.from('yesterday|nope').toString('base64url')]) {
      const r = await stack.request('GET', `/v1/jobs?cursor=${cursor}`, { user });
      expectProblem(r, 400, 'VALIDATION_FAILED');
      expect(r.json.errors).toEqual([{ path: 'query.cursor', message: 'not a cursor from this API' }]);
    }
  });

  it('answers 400 to a room list cursor it did not give out', async () => {
    const r = await stack.request('GET', `/v1/discussions?cursor=${Buffer.from(`${new Date().toISOString()}|x`).toString('base64url')}`, { user });
    expectProblem(r, 400, 'VALIDATION_FAILED');
    expect(r.json.errors).toEqual([{ path: 'query.cursor', message: 'not a cursor from this API' }]);
  });

  it('answers 400 when the body and the Idempotency-Key header name different keys, and records nothing', async () => {
    const u = await stack.user('member');
    const r = await stack.request('POST', '/v1/jobs', { user: u, headers: { 'idempotency-key': 'key-a' }, body: { ...ping, idempotencyKey: 'key-b' } });
    expectProblem(r, 400, 'VALIDATION_FAILED');
    expect(r.json.errors).toEqual([{ path: 'idempotencyKey', message: 'differs from the Idempotency-Key header' }]);
    expect(await stack.api.db('jobs').where({ owner_id: u.id })).toEqual([]);
  });

  it('answers 409 to a new user whose name is taken, in any case, and creates nothing', async () => {
    const admin = await stack.user('admin');
    const name = `taken-${randomUUID().slice(0, 8)}`;
    const body = (username: string) => ({ username, password: `pw-${randomUUID()}`, role: 'member' });
    expect((await stack.request('POST', '/v1/admin/users', { user: admin, body: body(name) })).status).toBe(201);
    for (const again of [name, name.toUpperCase()]) {
      const r = await stack.request('POST', '/v1/admin/users', { user: admin, body: body(again) });
      expectProblem(r, 409, 'INVALID_STATE');
      expect(r.json.detail).toBe('That username is taken');
    }
    expect(await stack.api.db('users').whereRaw('lower(username) = ?', [name])).toHaveLength(1);
  });
});

describe('running rooms per owner', () => {
  it('refuses to start or resume a room beyond the owner’s five running ones with 422 LIMIT_EXCEEDED', async () => {
    const owner = await stack.user('member');
    const agents = await makeAgents(stack, owner, 2);
    const rooms = [];
    for (let i = 0; i < 6; i++) rooms.push(await makeRoom(stack, owner, { agentIds: agents.map((a) => a.id) }));
    for (const room of rooms.slice(0, 5)) await act(stack, owner, room.id, 'start');

    const sixth = await stack.request('POST', `/v1/discussions/${rooms[5].id}/start`, { user: owner });
    expectProblem(sixth, 422, 'LIMIT_EXCEEDED');
    expect(sixth.json.detail).toBe('At most 5 discussions of one owner run at once; pause or stop one first');
    expect(await stack.api.db('discussions').where({ id: rooms[5].id }).first()).toMatchObject({ status: 'draft', turn_job_id: null });

    // A slot freed by a pause is taken by the sixth; the paused one cannot come back while five run.
    await act(stack, owner, rooms[0].id, 'pause');
    await act(stack, owner, rooms[5].id, 'start');
    const resumed = await stack.request('POST', `/v1/discussions/${rooms[0].id}/resume`, { user: owner });
    expectProblem(resumed, 422, 'LIMIT_EXCEEDED');
    expect(await stack.api.db('discussions').where({ id: rooms[0].id }).first()).toMatchObject({ status: 'paused' });
    // The cap is per owner: another user starts a room meanwhile.
    const other = await stack.user('member');
    const theirs = await makeRoom(stack, other, { agentIds: (await makeAgents(stack, other, 2)).map((a) => a.id) });
    await act(stack, other, theirs.id, 'start');
  });

  it('holds the cap when an owner starts and resumes rooms at the same instant', async () => {
    // The cap was a count before the transition: eight starts at once each counted the same running rooms
    // and all ran. Now each start counts under the owner's lock, inside its own transition.
    for (let round = 0; round < 3; round++) {
      const owner = await stack.user('member');
      const agents = await makeAgents(stack, owner, 2);
      const rooms = [];
      for (let i = 0; i < 9; i++) rooms.push(await makeRoom(stack, owner, { agentIds: agents.map((a) => a.id) }));
      // One paused room to resume among the starts.
      await act(stack, owner, rooms[8].id, 'start');
      await act(stack, owner, rooms[8].id, 'pause');
      const answers = await Promise.all([
        ...rooms.slice(0, 8).map((r) => stack.request('POST', `/v1/discussions/${r.id}/start`, { user: owner })),
        stack.request('POST', `/v1/discussions/${rooms[8].id}/resume`, { user: owner }),
      ]);
      const ok = answers.filter((a) => a.status === 200);
      expect(ok).toHaveLength(5);
      for (const a of answers.filter((x) => x.status !== 200)) expectProblem(a, 422, 'LIMIT_EXCEEDED');
      expect(Number((await stack.api.db('discussions').where({ owner_id: owner.id, status: 'running' }).count({ n: '*' }))[0]!.n)).toBe(5);
    }
  });
});
