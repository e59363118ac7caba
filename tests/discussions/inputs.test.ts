/**
 * Room inputs that name no one: the platform's own system user is not
 * someone a room can be shared with. No workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_USER_ID } from '../../platform/jobs/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { makeAgents, makeRoom } from './rooms.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

describe('sharedWith', () => {
  it('refuses the internal system user like an unknown one', async () => {
    const friend = await stack.user('member');
    const agentIds = (await makeAgents(stack, user, 2)).map((a) => a.id);
    const r = await stack.request('POST', '/v1/discussions', {
      user,
      body: { topic: 'Shared', agentIds, visibility: 'shared', sharedWith: [friend.id, SYSTEM_USER_ID] },
    });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'sharedWith.1', message: 'no such user' }] });
    expect(
      (await stack.request('POST', '/v1/discussions', { user, body: { topic: 'Shared', agentIds, visibility: 'shared', sharedWith: [friend.id] } })).status,
    ).toBe(201);
  });
});
