/**
 * People in the room: a human message reaches the next prompt, an interrupt
 * keeps the partial turn, stop closes the room after the interrupted turn,
 * and a fork copies turns 1..N, then diverges with its overrides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { act, closed, makeAgents, makeRoom, roomEvents, transcript, turnsFromEvents, waitForRoom } from './rooms.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack();
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

describe('human messages', () => {
  it('reach the prompt of the next turn that starts', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 16 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 3 } });
    const reader = roomEvents(stack, user, room.id);
    await act(stack, user, room.id, 'start');
    await waitForRoom(stack, user, room.id, (d) => d.speaking && d.turn === 1);
    const text = 'Please say something about pineapples.';
    const posted = await stack.request('POST', `/v1/discussions/${room.id}/messages`, { user, body: { text } });
    expect(posted.status).toBe(201);
    expect(posted.json).toMatchObject({ text, authorName: user.username, discussionId: room.id });
    await waitForRoom(stack, user, room.id, closed);

    const t = await transcript(stack, user, room.id, true);
    expect(t.messages).toEqual([expect.objectContaining({ id: posted.json.id, seq: posted.json.seq, text })]);
    const heard = (turn: any) => turn.prompt.some((m: any) => m.role === 'user' && m.content === `[audience] ${user.username}: ${text}`);
    // Turns that started before the message did not hear it; every turn after it did.
    for (const turn of t.turns) {
      expect(heard(turn)).toBe(turn.startedSeq > posted.json.seq);
      if (turn.startedSeq > posted.json.seq) expect(turn.context.humanMessages).toBe(1);
    }
    expect(t.turns.filter((x: any) => x.startedSeq > posted.json.seq).length).toBeGreaterThanOrEqual(1);
    // Viewers got it live, at its seq.
    const events = (await reader).events;
    expect(events.find((e) => e.event === 'human_message')).toMatchObject({ id: posted.json.seq, data: { id: posted.json.id, text, authorId: user.id } });
  }, 300_000);
});

describe('interrupt and stop', () => {
  it('an interrupt keeps the partial turn, marks it interrupted, and the next speaker follows', async () => {
    const [ada] = await makeAgents(stack, user, 1, { num_predict: 400, temperature: 0.8 });
    const [, bo] = await makeAgents(stack, user, 2, { num_predict: 12 });
    const room = await makeRoom(stack, user, { topic: 'Tell the longest possible story about the sea.', agentIds: [ada.id, bo.id], policy: { maxTurns: 2 } });
    const reader = roomEvents(stack, user, room.id);
    await act(stack, user, room.id, 'start');
    // Wait until turn 1 has streamed a few token events.
    await roomEvents(stack, user, room.id, { stopAfter: (e) => e.event === 'tokens' && e.data.turn === 1 && e.id >= 6 });
    const r = await act(stack, user, room.id, 'interrupt');
    expect(r.id).toBe(room.id);
    await waitForRoom(stack, user, room.id, closed);

    const t = await transcript(stack, user, room.id);
    const [first, second] = t.turns;
    expect(first).toMatchObject({ turn: 1, agentId: ada.id, status: 'interrupted' });
    expect(first.text.length).toBeGreaterThan(0);
    expect(first.usage.completionTokens).toBeLessThan(400);
    expect(second).toMatchObject({ turn: 2, agentId: bo.id, status: 'completed' });
    const events = (await reader).events;
    expect(events.find((e) => e.event === 'turn_finished' && e.data.turn === 1)).toMatchObject({ data: { status: 'interrupted' } });
    expect(turnsFromEvents(events).get(1)!.text).toBe(first.text);
    const job = (await stack.request('GET', `/v1/jobs/${first.jobId}`, { user })).json;
    expect(job.state).toBe('cancelled');
    // Nobody is speaking any more: another interrupt is refused.
    await act(stack, user, room.id, 'interrupt', 409);
  }, 300_000);

  it('stop interrupts the speaker; its turn finishes before the room closes', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 400 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 4 } });
    const reader = roomEvents(stack, user, room.id);
    await act(stack, user, room.id, 'start');
    await roomEvents(stack, user, room.id, { stopAfter: (e) => e.event === 'tokens' && e.id >= 4 });
    const stopped = await act(stack, user, room.id, 'stop');
    expect(stopped.status).toBe('stopped');
    const events = (await reader).events;
    const tail = events.slice(-2);
    expect(tail[0]).toMatchObject({ event: 'turn_finished', data: { turn: 1, status: 'interrupted' } });
    expect(tail[1]).toMatchObject({ event: 'status', data: { status: 'stopped' } });
    expect((await transcript(stack, user, room.id)).turns.map((x: any) => x.status)).toEqual(['interrupted']);
    await act(stack, user, room.id, 'resume', 409);
    expect((await stack.request('POST', `/v1/discussions/${room.id}/messages`, { user, body: { text: 'hello?' } })).status).toBe(409);
  }, 300_000);
});

describe('fork', () => {
  it('copies turns 1..N with their lineage, diverges with the overrides, and compares side by side', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 12 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 3 } });
    await act(stack, user, room.id, 'start');
    await waitForRoom(stack, user, room.id, closed);
    const source = await transcript(stack, user, room.id);

    const persona = 'You are Bo, and you have just fallen in love with cats.';
    const f = await stack.request('POST', `/v1/discussions/${room.id}/fork`, {
      user,
      body: { fromTurn: 2, maxTurns: 4, overrides: [{ agentId: agents[1].id, persona, params: { temperature: 0.2, num_predict: 10 } }] },
    });
    expect(f.status).toBe(201);
    const fork = f.json;
    expect(fork).toMatchObject({ status: 'draft', turn: 2, lineage: { parentId: room.id, forkTurn: 2 } });
    expect(fork.agents[1]).toMatchObject({ id: agents[1].id, persona, overridden: true, params: { temperature: 0.2, num_predict: 10 } });
    expect(fork.agents[0].overridden).toBe(false);
    // The agent itself is untouched.
    expect((await stack.request('GET', `/v1/agents/${agents[1].id}`, { user })).json.persona).toBe(agents[1].persona);

    const copied = await transcript(stack, user, fork.id);
    expect(copied.turns.map((x: any) => [x.turn, x.text, x.copiedFrom])).toEqual(
      source.turns.slice(0, 2).map((x: any) => [x.turn, x.text, { discussionId: room.id, turn: x.turn }]),
    );

    await act(stack, user, fork.id, 'start');
    await waitForRoom(stack, user, fork.id, closed);
    const forked = await transcript(stack, user, fork.id, true);
    expect(forked.turns.map((x: any) => x.turn)).toEqual([1, 2, 3, 4]);
    expect(forked.turns.slice(2).every((x: any) => x.copiedFrom === null)).toBe(true);
    const boTurn = forked.turns[3];
    expect(boTurn.agentId).toBe(agents[1].id);
    expect(boTurn.prompt[0].content.startsWith(persona)).toBe(true);
    // The copied history reached the fork's prompts.
    expect(forked.turns[2].prompt.some((m: any) => m.content.includes(source.turns[1].text.trim().slice(0, 20)))).toBe(true);

    // A viewer of the fork replays the whole history, copied turns marked as such.
    const replay = await roomEvents(stack, user, fork.id, { timeoutMs: 10_000 });
    expect(replay.events.filter((e) => e.event === 'turn_started').map((e) => [e.data.turn, e.data.copied ?? false])).toEqual([
      [1, true],
      [2, true],
      [3, false],
      [4, false],
    ]);
    expect([...turnsFromEvents(replay.events).values()].map((x) => x.text)).toEqual(forked.turns.map((x: any) => x.text));

    const cmp = await stack.request('GET', `/v1/discussions/${room.id}/compare/${fork.id}`, { user });
    expect(cmp.status).toBe(200);
    expect(cmp.json).toMatchObject({
      commonAncestor: room.id,
      divergesAfterTurn: 2,
      left: { id: room.id, lineage: null },
      right: { id: fork.id, lineage: { parentId: room.id, forkTurn: 2 } },
    });
    expect(cmp.json.rows.map((r: any) => r.turn)).toEqual([1, 2, 3, 4]);
    expect(cmp.json.rows.slice(0, 2).every((r: any) => r.same)).toBe(true);
    expect(cmp.json.rows[3]).toMatchObject({ left: null, same: false, right: { agentId: agents[1].id } });

    // Forked at the end of the finished room with no maxTurns: another run of the parent's length, not a dead draft;
    // forked before its end: the parent's limit. A maxTurns that leaves no turn to run is refused.
    const atEnd = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 3 } });
    expect(atEnd.status).toBe(201);
    expect(atEnd.json.policy.maxTurns).toBe(6);
    const midway = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 1 } });
    expect(midway.json.policy.maxTurns).toBe(3);
    const dead = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 3, maxTurns: 3 } });
    expect(dead.status).toBe(400);
    expect(dead.json.errors).toEqual([expect.objectContaining({ path: 'maxTurns' })]);
    expect((await act(stack, user, atEnd.json.id, 'start')).status).toBe('running');
    await act(stack, user, atEnd.json.id, 'stop');
    await act(stack, user, midway.json.id, 'stop');

    // Forking beyond the transcript is refused.
    expect((await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 9 } })).status).toBe(400);
  }, 400_000);

  it('refuses two overrides for one agent, naming the second, as create refuses a repeated agent', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 8 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    const overrides = [
      { agentId: agents[0].id, persona: 'You are the first override.' },
      { agentId: agents[0].id.toUpperCase(), persona: 'You are the second override.', params: { num_predict: 7 } },
    ];
    const r = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 0, overrides } });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'overrides.1.agentId' }] });
    expect(await stack.api.db('discussions').where({ parent_id: room.id })).toEqual([]);
    await act(stack, user, room.id, 'stop');
  });
});
