/**
 * A room's turn jobs through the jobs API: a client may cancel one (the
 * room's interrupt does the same), but not re-run it. A retry of a cancelled
 * turn job was accepted (202), re-ran as `skipped` and overwrote the record
 * (cancelled, with partial usage) with `completed` and no usage. No workers:
 * the turn job waits in its queue, where a cancel records it at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { act, makeAgents, makeRoom } from './rooms.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

describe('a discussion.turn job through /v1/jobs', () => {
  it('is cancelled like any job, but its retry is 409 INVALID_STATE and leaves the record as it was', async () => {
    const agents = await makeAgents(stack, user, 2);
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    await act(stack, user, room.id, 'start');
    const jobId = (await stack.api.db('discussions').where({ id: room.id }).first()).turn_job_id as string;
    const cancelled = await stack.request('DELETE', `/v1/jobs/${jobId}`, { user });
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ kind: 'discussion.turn', state: 'cancelled' });
    const before = (await stack.request('GET', `/v1/jobs/${jobId}`, { user })).json;

    const retry = await stack.request('POST', `/v1/jobs/${jobId}/retry`, { user });
    expect(retry.status).toBe(409);
    expect(retry.json).toMatchObject({ code: 'INVALID_STATE', kind: 'discussion.turn' });
    // The same refusal for the job's submit-time counterpart: POST /v1/jobs takes no internal kind.
    const submit = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'discussion.turn', input: { discussionId: room.id, turn: 1, run: 0 } } });
    expect(submit.status).toBe(400);
    expect(submit.json.errors).toEqual([expect.objectContaining({ path: 'kind' })]);

    expect((await stack.request('GET', `/v1/jobs/${jobId}`, { user })).json).toEqual(before);
    expect(await stack.api.db('jobs').where({ id: jobId }).first()).toMatchObject({ state: 'cancelled', attempts: before.attempts });
    await act(stack, user, room.id, 'stop');
  });
});
