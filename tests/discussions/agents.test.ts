/**
 * Agents through the API: CRUD for the owner, everything for admins, role
 * caps on the model and its parameters, and no deleting an agent a room uses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { makeRoom } from './rooms.ts';

let stack: Stack;
let member: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false, env: { PARLEY_ROLE_CAPS: JSON.stringify({ member: { maxNumPredict: 256, maxNumCtx: 4096 } }) } });
  member = await stack.user('member');
});
afterAll(() => stack?.stop());

const agent = (over: Record<string, unknown> = {}) => ({ name: 'Ada', persona: 'You are Ada.', ...over });

describe('agents', () => {
  it('are created, listed, changed and deleted by their owner; others see nothing, admins everything', async () => {
    const other = await stack.user('member');
    const admin = await stack.user('admin');
    const created = await stack.request('POST', '/v1/agents', { user: member, body: agent({ params: { temperature: 0.3, num_predict: 64 } }) });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'Ada',
      owner: member.id,
      model: stack.api.config.ollama.chatModel,
      params: { temperature: 0.3, num_predict: 64 },
    });
    const id = created.json.id;
    expect((await stack.request('GET', '/v1/agents', { user: member })).json.items.map((a: any) => a.id)).toContain(id);
    expect((await stack.request('GET', '/v1/agents', { user: other })).json.items.map((a: any) => a.id)).not.toContain(id);
    expect((await stack.request('GET', `/v1/agents/${id}`, { user: other })).status).toBe(404);
    expect((await stack.request('PATCH', `/v1/agents/${id}`, { user: other, body: { name: 'Eve' } })).status).toBe(404);
    expect((await stack.request('GET', `/v1/agents/${id}`, { user: admin })).status).toBe(200);

    const patched = await stack.request('PATCH', `/v1/agents/${id}`, { user: member, body: { persona: 'You are Ada, now a pessimist.' } });
    expect(patched.json).toMatchObject({ persona: 'You are Ada, now a pessimist.', params: { temperature: 0.3 } });
    expect((await stack.request('DELETE', `/v1/agents/${id}`, { user: member })).status).toBe(204);
    expect((await stack.request('GET', `/v1/agents/${id}`, { user: member })).status).toBe(404);
  });

  it('stay within the role caps on create and update', async () => {
    const over = await stack.request('POST', '/v1/agents', { user: member, body: agent({ params: { num_predict: 1000 } }) });
    expect(over.status).toBe(422);
    expect(over.json).toMatchObject({ code: 'LIMIT_EXCEEDED', errors: [{ path: 'params.num_predict' }] });
    const ok = (await stack.request('POST', '/v1/agents', { user: member, body: agent() })).json;
    expect((await stack.request('PATCH', `/v1/agents/${ok.id}`, { user: member, body: { params: { num_ctx: 8192 } } })).status).toBe(422);
    expect((await stack.request('POST', '/v1/agents', { user: member, body: agent({ params: { bogus: 1 } }) })).status).toBe(400);
  });

  it('cannot be deleted while a discussion uses them', async () => {
    const a = (await stack.request('POST', '/v1/agents', { user: member, body: agent() })).json;
    const b = (await stack.request('POST', '/v1/agents', { user: member, body: agent({ name: 'Bo' }) })).json;
    await makeRoom(stack, member, { agentIds: [a.id, b.id] });
    const del = await stack.request('DELETE', `/v1/agents/${a.id}`, { user: member });
    expect(del.status).toBe(409);
    expect(del.json.code).toBe('INVALID_STATE');
    // Two speakers with one name would make the moderator and transcripts ambiguous.
    const twin = (await stack.request('POST', '/v1/agents', { user: member, body: agent() })).json;
    expect((await stack.request('POST', '/v1/discussions', { user: member, body: { topic: 't', agentIds: [a.id, twin.id] } })).status).toBe(400);
  });

  it('answer a room created while one of its agents is deleted as if the delete came first, or refuse the delete', async () => {
    // The create checks the roster, then inserts it; a delete landing between the two met the foreign key
    // as an unmapped error (a 500 in about four rounds of ten). Delays of 0-7 ms move the delete across the window.
    const user = await stack.user('member');
    const seen = new Set<string>();
    for (let round = 0; round < 24; round++) {
      const a = (await stack.request('POST', '/v1/agents', { user, body: agent({ name: `A${round}` }) })).json;
      const b = (await stack.request('POST', '/v1/agents', { user, body: agent({ name: `B${round}` }) })).json;
      const [created, deleted] = await Promise.all([
        stack.request('POST', '/v1/discussions', { user, body: { topic: 't', agentIds: [a.id, b.id] } }),
        new Promise((r) => setTimeout(r, round % 8)).then(() => stack.request('DELETE', `/v1/agents/${a.id}`, { user })),
      ]);
      seen.add(`${created.status}/${deleted.status}`);
      if (created.status === 201) {
        // The room holds the agent, so the delete was refused (or ran first and the create saw no agent).
        expect(deleted.status).toBe(409);
        await stack.request('POST', `/v1/discussions/${created.json.id}/stop`, { user });
      } else {
        expect(created.status).toBe(400);
        expect(created.json.errors).toContainEqual(expect.objectContaining({ path: expect.stringMatching(/^agentIds/), message: 'no such agent' }));
        expect(deleted.status).toBe(204);
        expect((await stack.request('GET', `/v1/agents/${a.id}`, { user })).status).toBe(404);
      }
    }
    expect([...seen].every((s) => s === '201/409' || s === '400/204')).toBe(true);
  });

  it('cannot be renamed to another speaker’s name (in any letter case) in an open room they share; closed rooms do not object', async () => {
    const user = await stack.user('member');
    const make = async (name: string) => (await stack.request('POST', '/v1/agents', { user, body: agent({ name }) })).json;
    const [a, b, judge] = [await make('Rn1'), await make('Rn2'), await make('Rjudge')];
    const room = await makeRoom(stack, user, { agentIds: [a.id, b.id], policy: { maxTurns: 2, turns: { kind: 'moderator', moderatorId: judge.id } } });
    const clash = await stack.request('PATCH', `/v1/agents/${b.id}`, { user, body: { name: 'rn1' } });
    expect(clash.status).toBe(409);
    expect(clash.json).toMatchObject({ code: 'INVALID_STATE', discussionId: room.id, errors: [{ path: 'name' }] });
    expect(clash.json.detail).toContain(room.id);
    expect((await stack.request('GET', `/v1/agents/${b.id}`, { user })).json.name).toBe('Rn2');
    expect((await stack.request('GET', `/v1/discussions/${room.id}`, { user })).json.agents.map((x: any) => x.name)).toEqual(['Rn1', 'Rn2']);
    // The moderator is not a speaker: it may share a speaker's name, as at create; a change of case of one's own name is fine.
    expect((await stack.request('PATCH', `/v1/agents/${judge.id}`, { user, body: { name: 'RN1' } })).status).toBe(200);
    expect((await stack.request('PATCH', `/v1/agents/${a.id}`, { user, body: { name: 'RN1' } })).status).toBe(200);
    // Once the room is closed, its names no longer have to stay apart.
    expect((await stack.request('POST', `/v1/discussions/${room.id}/stop`, { user })).status).toBe(200);
    const renamed = await stack.request('PATCH', `/v1/agents/${b.id}`, { user, body: { name: 'rn1' } });
    expect(renamed.status).toBe(200);
    expect(renamed.json.name).toBe('rn1');
  });
  it('take names in any script, marks included, stored in NFC so that a decomposed spelling is the same name', async () => {
    const user = await stack.user('member');
    const create = (name: string) => stack.request('POST', '/v1/agents', { user, body: agent({ name }) });
    const devanagari = await create('दीपा');
    expect(devanagari.status).toBe(201);
    expect(devanagari.json.name).toBe('दीपा');
    const decomposed = await create('Jose\u0301');
    expect(decomposed.status).toBe(201);
    expect(decomposed.json.name).toBe('Jos\u00e9');
    expect(decomposed.json.name.length).toBe(4);
    // Two speakers whose names differ only in how é is encoded are one name to the moderator: refused.
    const precomposed = (await create('Jos\u00e9')).json;
    const twin = await stack.request('POST', '/v1/discussions', { user, body: { topic: 'Is NFC enough?', agentIds: [decomposed.json.id, precomposed.id] } });
    expect(twin.status).toBe(400);
    expect(twin.json.errors).toEqual([expect.objectContaining({ path: 'agentIds' })]);
    // A mark cannot open a name, and invisible characters stay refused.
    for (const bad of ['\u0301x', 'a\u200bb']) {
      const r = await create(bad);
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'name' }] });
    }
  });
  it('never end up as two speakers of one open room with one name, when a rename races the room’s create', async () => {
    const user = await stack.user('member');
    const make = async (name: string) => (await stack.request('POST', '/v1/agents', { user, body: agent({ name }) })).json;
    for (let round = 0; round < 25; round++) {
      const [a, b] = [await make(`Race${round}a`), await make(`Race${round}b`)];
      const [room, rename] = await Promise.all([
        stack.request('POST', '/v1/discussions', { user, body: { topic: `Race ${round}`, agentIds: [a.id, b.id] } }),
        stack.request('PATCH', `/v1/agents/${b.id}`, { user, body: { name: `race${round}A` } }),
      ]);
      // One of the two may win, never both.
      expect([room.status, rename.status], `round ${round}`).not.toEqual([201, 200]);
      expect([201, 400], `round ${round}`).toContain(room.status);
      if (room.status === 201) {
        const names = (await stack.request('GET', `/v1/discussions/${room.json.id}`, { user })).json.agents.map((x: any) => x.name.toLowerCase());
        expect(new Set(names).size).toBe(names.length);
        await stack.request('POST', `/v1/discussions/${room.json.id}/stop`, { user });
      }
    }
  });
});
