/**
 * Issue 16, "every resource bounded", for the arena: open rooms and agents
 * per user, human messages per room (draft rooms included), and room
 * streams trimmed to a length, with a transcript snapshot standing in for
 * what a late joiner can no longer replay. No workers: nothing here needs a
 * turn to run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRoomEvents } from '../../platform/streams/index.ts';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { makeAgents, makeRoom } from '../discussions/rooms.ts';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    workers: false,
    env: { PARLEY_MAX_OPEN_ROOMS_PER_USER: '2', PARLEY_MAX_AGENTS_PER_USER: '3', PARLEY_ROOM_MAX_MESSAGES: '3', PARLEY_ROOM_STREAM_MAXLEN: '100' },
  });
});
afterAll(() => stack?.stop());

const post = (u: TestUser, id: string, text: string) => stack.request('POST', `/v1/discussions/${id}/messages`, { user: u, body: { text } });

describe('per-user caps on rooms and agents', () => {
  it('refuses a third open room with 422 LIMIT_EXCEEDED, and takes one again once a room is stopped', async () => {
    const u = await stack.user('member');
    const agents = await makeAgents(stack, u, 2);
    const body = { agentIds: agents.map((a) => a.id) };
    const [a] = [await makeRoom(stack, u, body), await makeRoom(stack, u, body)];
    const third = await stack.request('POST', '/v1/discussions', { user: u, body: { topic: 'One too many', ...body } });
    expect(third.status).toBe(422);
    expect(third.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxOpenRoomsPerUser', limit: 2 });
    expect((await stack.request('POST', `/v1/discussions/${a.id}/stop`, { user: u })).status).toBe(200);
    expect((await stack.request('POST', '/v1/discussions', { user: u, body: { topic: 'Room again', ...body } })).status).toBe(201);
  });

  it('counts forks as open rooms', async () => {
    const u = await stack.user('member');
    const agents = await makeAgents(stack, u, 2);
    const room = await makeRoom(stack, u, { agentIds: agents.map((a) => a.id) });
    expect((await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user: u, body: { fromTurn: 0 } })).status).toBe(201);
    const r = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user: u, body: { fromTurn: 0 } });
    expect(r.status).toBe(422);
    expect(r.json.cap).toBe('maxOpenRoomsPerUser');
  });

  it('refuses a fourth agent with 422, and a fork that would copy more agents than the forker has room for', async () => {
    const u = await stack.user('member');
    await makeAgents(stack, u, 3);
    const fourth = await stack.request('POST', '/v1/agents', { user: u, body: { name: 'Dee', persona: 'You are Dee.' } });
    expect(fourth.status).toBe(422);
    expect(fourth.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxAgentsPerUser', limit: 3 });
    const owner = await stack.user('member');
    const theirs = await makeAgents(stack, owner, 2);
    const room = await makeRoom(stack, owner, { agentIds: theirs.map((a) => a.id), visibility: 'public' });
    const fork = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user: u, body: { fromTurn: 0 } });
    expect(fork.status).toBe(422);
    expect(fork.json.cap).toBe('maxAgentsPerUser');
    expect(await stack.api.db('discussions').where({ owner_id: u.id })).toEqual([]);
  });
  it('hold exactly under concurrent creates: 24 agents at once leave 3, 16 rooms and forks at once leave 2 open', async () => {
    // The count and the insert were separate statements: 130 concurrent creates made 102 agents under a cap of 100.
    const u = await stack.user('member');
    const made = await Promise.all(
      Array.from({ length: 24 }, (_, i) => stack.request('POST', '/v1/agents', { user: u, body: { name: `Racer${i}`, persona: 'You race.' } })),
    );
    expect(made.filter((r) => r.status === 201)).toHaveLength(3);
    for (const r of made.filter((r) => r.status !== 201)) expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxAgentsPerUser' });
    expect(await stack.api.db('agents').where({ owner_id: u.id })).toHaveLength(3);

    const agentIds = made.filter((r) => r.status === 201).map((r) => r.json.id as string);
    const first = await makeRoom(stack, u, { agentIds: agentIds.slice(0, 2) });
    const rooms = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        i % 2
          ? stack.request('POST', `/v1/discussions/${first.id}/fork`, { user: u, body: { fromTurn: 0 } })
          : stack.request('POST', '/v1/discussions', { user: u, body: { topic: `Race ${i}`, agentIds: agentIds.slice(0, 2) } }),
      ),
    );
    expect(rooms.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of rooms.filter((r) => r.status !== 201)) expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxOpenRoomsPerUser' });
    expect(await stack.api.db('discussions').where({ owner_id: u.id }).whereIn('status', ['draft', 'running', 'paused'])).toHaveLength(2);
  });
});

describe('human messages per room', () => {
  it('takes at most PARLEY_ROOM_MAX_MESSAGES into a draft room, then 422, and writes nothing more to its stream', async () => {
    const u = await stack.user('member');
    const agents = await makeAgents(stack, u, 2);
    const room = await makeRoom(stack, u, { agentIds: agents.map((a) => a.id) });
    for (let i = 0; i < 3; i++) expect((await post(u, room.id, `message ${i} ${'x'.repeat(3000)}`)).status).toBe(201);
    const key = stack.api.keys.roomStream(room.id);
    const len = await stack.api.redis.xlen(key);
    const over = await post(u, room.id, 'one more');
    expect(over.status).toBe(422);
    expect(over.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxMessagesPerRoom', limit: 3 });
    expect(await stack.api.redis.xlen(key)).toBe(len);
  });
});

describe('room streams are trimmed', () => {
  it('keeps about PARLEY_ROOM_STREAM_MAXLEN entries of an open room; a late joiner gets a snapshot, then the live stream', async () => {
    const u = await stack.user('member');
    const agents = await makeAgents(stack, u, 2);
    const room = await makeRoom(stack, u, { agentIds: agents.map((a) => a.id) });
    expect((await post(u, room.id, 'before the flood')).status).toBe(201);
    // What a long running room writes: many token entries (as a turn's writer appends them, with the bound).
    for (let i = 0; i < 30; i++) {
      await appendRoomEvents(
        stack.api.redis,
        stack.api.keys,
        room.id,
        1,
        Array.from({ length: 20 }, (_, j) => ({ e: 'tokens', d: { turn: 1, agentId: agents[0].id, text: `t${i}-${j} ` } })),
        100,
      );
    }
    const key = stack.api.keys.roomStream(room.id);
    // MAXLEN ~ trims whole stream nodes (100 entries each): at most one node over the bound.
    expect(await stack.api.redis.xlen(key)).toBeLessThanOrEqual(200);
    const [oldest] = (await stack.api.redis.xrange(key, '-', '+', 'COUNT', 1)) as [string, string[]][];
    const firstSeq = Number(oldest![0].split('-')[1]);
    expect(firstSeq).toBeGreaterThan(1);

    const { events } = await readSse(`${stack.base}/v1/discussions/${room.id}/events`, u.auth, { timeoutMs: 10_000, stopAfter: (e) => e.event === 'tokens' });
    expect(events[0]).toMatchObject({ event: 'snapshot', id: firstSeq - 1, data: { status: 'draft' } });
    expect(events[0]!.data.messages.map((m: any) => m.text)).toEqual(['before the flood']);
    expect(events[1]).toMatchObject({ event: 'tokens', id: firstSeq });
  });
  it('a late joiner whose kept entries begin inside a committed turn gets that turn once, whole, from the snapshot', async () => {
    const u = await stack.user('member');
    const agents = await makeAgents(stack, u, 2);
    const room = await makeRoom(stack, u, { agentIds: agents.map((a) => a.id) });
    const { redis, keys } = stack.api;
    const write = (events: { e: string; d: Record<string, unknown> }[]) => appendRoomEvents(redis, keys, room.id, 1, events, 100);
    const speaker = { agentId: agents[0].id };
    // Turn 1 as a worker writes it: turn_started, many token entries (a message posted while it is spoken), turn_finished.
    const [startedSeq] = await write([{ e: 'turn_started', d: { turn: 1, ...speaker, agentName: agents[0].name, model: agents[0].model } }]);
    let text = '';
    for (let i = 0; i < 20; i++) {
      if (i === 18) expect((await post(u, room.id, 'during turn 1')).status).toBe(201);
      const chunk = Array.from({ length: 20 }, (_, j) => `w${i}-${j} `);
      text += chunk.join('');
      await write(chunk.map((t) => ({ e: 'tokens', d: { turn: 1, ...speaker, text: t } })));
    }
    await stack.api.discussions.transcripts.putTurn({
      discussionId: room.id,
      turn: 1,
      agentId: agents[0].id,
      agentName: agents[0].name,
      model: agents[0].model,
      text,
      status: 'completed',
      usage: null,
      timings: { startedAt: new Date(), firstTokenMs: null, totalMs: 0 },
      startedSeq: startedSeq!,
      attempt: 1,
      jobId: null,
      context: null,
      prompt: [],
      copiedFrom: null,
      pickedBy: 'round_robin',
      error: null,
      createdAt: new Date(),
    });
    const [finishedSeq] = await write([{ e: 'turn_finished', d: { turn: 1, ...speaker, status: 'completed', usage: null } }]);
    await write([
      { e: 'turn_started', d: { turn: 2, agentId: agents[1].id, agentName: agents[1].name, model: agents[1].model } },
      { e: 'tokens', d: { turn: 2, agentId: agents[1].id, text: 'turn two' } },
    ]);
    const [oldest] = (await redis.xrange(keys.roomStream(room.id), '-', '+', 'COUNT', 1)) as [string, string[]][];
    const firstSeq = Number(oldest![0].split('-')[1]);
    // The kept entries begin inside turn 1, with its tail (and the message) still kept.
    expect(firstSeq).toBeGreaterThan(startedSeq!);
    expect(firstSeq).toBeLessThan(finishedSeq! - 40);

    const { events } = await readSse(`${stack.base}/v1/discussions/${room.id}/events`, u.auth, {
      timeoutMs: 10_000,
      stopAfter: (e) => e.event === 'tokens' && e.data.turn === 2,
    });
    const [snapshot, ...rest] = events;
    expect(snapshot).toMatchObject({ event: 'snapshot', id: finishedSeq, data: { status: 'draft' } });
    expect(snapshot!.data.turns.map((t: any) => [t.turn, t.text])).toEqual([[1, text]]);
    expect(snapshot!.data.messages.map((m: any) => m.text)).toEqual(['during turn 1']);
    // Nothing the snapshot holds comes again: the stream resumes with turn 2.
    expect(rest.map((e) => [e.event, e.data.turn])).toEqual([
      ['turn_started', 2],
      ['tokens', 2],
    ]);
    expect(rest.map((e) => e.id)).toEqual([finishedSeq! + 1, finishedSeq! + 2]);
  });
});
