/**
 * Room and agent inputs that say nothing or name no one: text made only of
 * zero-width characters is blank like whitespace, and the platform's own
 * system user is not someone a room can be shared with. No workers.
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

const invisible = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u200b \u200d\u2060\t\ufeff'];

describe('blank text', () => {
  it('counts zero-width characters as blank in a topic, a persona and a message; one visible character is enough', async () => {
    const agents = await makeAgents(stack, user, 2);
    const agentIds = agents.map((a) => a.id);
    const room = await makeRoom(stack, user, { agentIds });
    for (const text of invisible) {
      const topic = await stack.request('POST', '/v1/discussions', { user, body: { topic: text, agentIds } });
      expect(topic.status, JSON.stringify(text)).toBe(400);
      expect(topic.json).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'topic', message: 'must not be blank' }] });
      const persona = await stack.request('POST', '/v1/agents', { user, body: { name: 'Ghost', persona: text } });
      expect(persona.status).toBe(400);
      expect(persona.json.errors).toEqual([expect.objectContaining({ path: 'persona' })]);
      const patch = await stack.request('PATCH', `/v1/agents/${agents[0].id}`, { user, body: { persona: text } });
      expect(patch.status).toBe(400);
      const message = await stack.request('POST', `/v1/discussions/${room.id}/messages`, { user, body: { text } });
      expect(message.status).toBe(400);
      expect(message.json.errors).toEqual([expect.objectContaining({ path: 'text' })]);
    }
    expect((await stack.request('POST', `/v1/discussions/${room.id}/messages`, { user, body: { text: '\u200bhi\u200b' } })).status).toBe(201);
  });
});

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
