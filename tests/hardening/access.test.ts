/**
 * Issue 16, "the access gaps": deep readiness for operators only, rate
 * limited and leaving no record; anonymous readiness saying only up or down;
 * forking someone else's room under the forker's caps and with copies of the
 * owner's agents.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_USER_ID } from '../../platform/jobs/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { makeAgents, makeRoom } from '../discussions/rooms.ts';

let stack: Stack;
let member: TestUser;
let operator: TestUser;

beforeAll(async () => {
  stack = await startStack({ env: { PARLEY_READYZ_DEEP_INTERVAL_S: '600' } });
  [member, operator] = await Promise.all([stack.user('member'), stack.user('operator')]);
});
afterAll(() => stack?.stop());

const probeRows = () =>
  stack.api
    .db('jobs')
    .where({ owner_id: SYSTEM_USER_ID, kind: 'system.ping', key_prefix: stack.prefix })
    .count<{ n: string }[]>('* as n')
    .then((r) => Number(r[0]!.n));

describe('/readyz', () => {
  it('tells anyone only whether each dependency is up: no timings, errors, hosts or models', async () => {
    const r = await stack.request('GET', '/readyz');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'ready', checks: { redis: { ok: true }, postgres: { ok: true }, ollama: { ok: true } } });
    expect(r.text).not.toContain('127.0.0.1');
  });

  it('gives operators the detail: timings per check, the Ollama hosts and the models', async () => {
    const r = await stack.request('GET', '/readyz', { user: operator });
    expect(r.status).toBe(200);
    expect(r.json.checks.redis).toEqual({ ok: true, ms: expect.any(Number) });
    expect(r.json.ollamaHosts).toEqual(expect.arrayContaining([expect.objectContaining({ up: true })]));
    expect(r.json.models.length).toBeGreaterThan(0);
  });

  it('refuses deep readiness to anonymous callers (401) and to members (403), running nothing', async () => {
    const before = await probeRows();
    const anon = await stack.request('GET', '/readyz?deep=1');
    expect(anon.status).toBe(401);
    expect(anon.json.code).toBe('UNAUTHENTICATED');
    const m = await stack.request('GET', '/readyz?deep=1', { user: member });
    expect(m.status).toBe(403);
    expect(m.json.code).toBe('FORBIDDEN');
    expect(await probeRows()).toBe(before);
  });

  it('runs deep readiness for operators at most once per interval, and leaves no job record behind', async () => {
    const deep = await stack.request('GET', '/readyz?deep=1', { user: operator });
    expect(deep.status).toBe(200);
    expect(deep.json.checks.pipeline).toMatchObject({ ok: true });
    expect(await probeRows()).toBe(0);
    const again = await stack.request('GET', '/readyz?deep=1', { user: operator });
    expect(again.status).toBe(429);
    expect(again.json.code).toBe('RATE_LIMITED');
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await probeRows()).toBe(0);
  });
});

describe("forking someone else's room", () => {
  it("refuses a fork whose speakers exceed the forker's caps with 422, creating nothing", async () => {
    // The operator's agents ask for more tokens than a member may.
    const agents = await makeAgents(stack, operator, 2, { num_predict: 4000 });
    const room = await makeRoom(stack, operator, { agentIds: agents.map((a) => a.id), visibility: 'public' });
    const roomsBefore = await stack.api.db('discussions').where({ owner_id: member.id }).count<{ n: string }[]>('* as n');
    const r = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user: member, body: { fromTurn: 0 } });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxNumPredict' });
    expect(await stack.api.db('discussions').where({ owner_id: member.id }).count<{ n: string }[]>('* as n')).toEqual(roomsBefore);
    expect(await stack.api.db('agents').where({ owner_id: member.id })).toEqual([]);
  });

  it("runs the fork with the forker's own copies of the agents, so the owner's agents stay the owner's alone", async () => {
    const owner = await stack.user('member');
    const forker = await stack.user('member');
    const agents = await makeAgents(stack, owner, 2);
    const room = await makeRoom(stack, owner, { agentIds: agents.map((a) => a.id), visibility: 'public' });
    const r = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user: forker, body: { fromTurn: 0 } });
    expect(r.status).toBe(201);
    const forkAgents = r.json.agents.map((a: any) => a.id);
    expect(forkAgents).toHaveLength(2);
    for (const id of forkAgents) expect(agents.map((a) => a.id)).not.toContain(id);
    const mine = await stack.request('GET', '/v1/agents', { user: forker });
    expect(mine.json.items.map((a: any) => a.id).sort()).toEqual([...forkAgents].sort());
    expect(mine.json.items.map((a: any) => a.name).sort()).toEqual(agents.map((a) => a.name).sort());
    // Nothing of the fork refers to the owner's agents: only the owner's own room holds them.
    const holders = await stack.api
      .db('discussion_agents')
      .whereIn(
        'agent_id',
        agents.map((a) => a.id),
      )
      .distinct('discussion_id');
    expect(holders).toEqual([{ discussion_id: room.id }]);
  });
});
