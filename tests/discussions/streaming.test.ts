/**
 * Watching a room: a Socket.IO viewer that drops mid-turn resumes with no
 * gap and no duplicate, SSE resumes after Last-Event-ID, a late joiner gets
 * the transcript so far plus the turn in progress, and nobody without access
 * can join or read.
 */
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { act, closed, makeAgents, makeRoom, roomEvents, socketFor, subscribe, transcript, turnsFromEvents, waitForRoom } from './rooms.ts';
import { until } from '../support/until.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack();
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

const roomEventNames = ['turn_started', 'tokens', 'turn_finished', 'status', 'human_message', 'snapshot'];

/** Collects a room's events over Socket.IO until the room closes; `onEvent` may drop the connection. */
function collect(socket: Socket, room: string, onEvent: (e: { event: string; data: any }, all: { event: string; data: any }[]) => void = () => {}) {
  const all: { event: string; data: any }[] = [];
  const done = new Promise<typeof all>((resolve) => {
    for (const name of roomEventNames) {
      socket.on(name, (data: any) => {
        expect(data.room).toBe(room);
        all.push({ event: name, data });
        onEvent({ event: name, data }, all);
        if (name === 'status' && (data.status === 'finished' || data.status === 'stopped')) resolve(all);
      });
    }
  });
  return done;
}

describe('live room streaming', () => {
  it('a Socket.IO viewer that drops in the middle of a turn resumes with no gap and no duplicate', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 40 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    const name = `discussion:${room.id}`;
    const socket = socketFor(stack, user);
    let lastSeq = 0;
    let drops = 0;
    let droppedInTurn: number | undefined;
    let missedWhileAway = false;
    const events = collect(socket, name, (e, all) => {
      lastSeq = e.data.seq;
      // Turn 1's own token events: a short first turn (the model may stop early, and the writer batches
      // tokens into fewer events) must not move the drop into turn 2.
      const turnOneTokens = all.filter((x) => x.event === 'tokens' && x.data.turn === 1).length;
      if (drops === 0 && e.event === 'tokens' && e.data.turn === 1 && turnOneTokens === 2) {
        drops += 1;
        droppedInTurn = e.data.turn;
        socket.disconnect();
        // Stay away until the room has moved on without us, then resume from the last seq seen.
        const away = lastSeq;
        void until(
          'the room to move on while the viewer is away',
          async () => Number(await stack.api.redis.get(stack.api.keys.roomSeq(room.id))) >= away + 5,
        ).then(() => {
          missedWhileAway = true;
          socket.connect();
        });
      }
    });
    socket.on('connect', () => void subscribe(socket, name, lastSeq).then((ack) => expect(ack.ok).toBe(true)));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    await act(stack, user, room.id, 'start');
    const all = await events;
    socket.close();

    expect(drops).toBe(1);
    expect(missedWhileAway).toBe(true);
    expect(droppedInTurn).toBe(1);
    expect(all.map((e) => e.data.seq)).toEqual(all.map((_, i) => i + 1));
    const t = await transcript(stack, user, room.id);
    const streamed = turnsFromEvents(all);
    expect(t.turns.map((x: any) => x.text)).toEqual([...streamed.values()].map((x) => x.text));
    // Each token event is tagged with its turn and speaker.
    for (const e of all.filter((x) => x.event === 'tokens')) expect(e.data.agentId).toBe(t.turns[e.data.turn - 1].agentId);
  }, 300_000);

  it('SSE resumes after Last-Event-ID with no gap and no duplicate', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 24 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    await act(stack, user, room.id, 'start');
    const first = await roomEvents(stack, user, room.id, { stopAfter: (e) => e.event === 'tokens' && e.id >= 5 });
    const rest = await roomEvents(stack, user, room.id, { lastEventId: first.events.at(-1)!.id });
    const all = [...first.events, ...rest.events];
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
    const t = await transcript(stack, user, room.id);
    expect([...turnsFromEvents(all).values()].map((x) => x.text)).toEqual(t.turns.map((x: any) => x.text));
  }, 300_000);

  it('a late joiner gets the transcript so far, then the turn in progress, then the rest live', async () => {
    const [ada] = await makeAgents(stack, user, 1, { num_predict: 16 });
    const [, bo] = await makeAgents(stack, user, 2, { num_predict: 120 });
    const room = await makeRoom(stack, user, { agentIds: [ada.id, bo.id], policy: { maxTurns: 3 } });
    await act(stack, user, room.id, 'start');
    // Join while turn 2 (the long one) is being spoken.
    await roomEvents(stack, user, room.id, { stopAfter: (e) => e.event === 'tokens' && e.data.turn === 2 });
    const socket = socketFor(stack, user);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const events = collect(socket, `discussion:${room.id}`);
    expect((await subscribe(socket, `discussion:${room.id}`)).ok).toBe(true);
    expect(await stack.request('GET', `/v1/discussions/${room.id}`, { user }).then((r) => [r.json.turn, r.json.speaking])).toEqual([2, true]);
    const all = await events;
    socket.close();

    expect(all[0]!.data.seq).toBe(1);
    expect(all.map((e) => e.data.seq)).toEqual(all.map((_, i) => i + 1));
    const t = await transcript(stack, user, room.id);
    expect(t.turns).toHaveLength(3);
    expect([...turnsFromEvents(all).values()].map((x) => x.text)).toEqual(t.turns.map((x: any) => x.text));
  }, 300_000);

  it('a closed room whose stream expired is answered with one snapshot from the transcript', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 8 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 1 } });
    await act(stack, user, room.id, 'start');
    await waitForRoom(stack, user, room.id, closed);
    expect(await stack.api.redis.ttl(stack.api.keys.roomStream(room.id))).toBeGreaterThan(0);
    await stack.api.redis.del(stack.api.keys.roomStream(room.id));
    const sse = await roomEvents(stack, user, room.id, { timeoutMs: 5000, stopAfter: (e) => e.event === 'snapshot' });
    expect(sse.events).toHaveLength(1);
    expect(sse.events[0]).toMatchObject({ event: 'snapshot', data: { status: 'finished', turns: [expect.objectContaining({ turn: 1 })] } });
  }, 300_000);
});

describe("the end of a room's stream", () => {
  const events = (id: string, lastEventId: number, method = 'GET') =>
    stack.request(method, `/v1/discussions/${id}/events`, { user, headers: { 'last-event-id': String(lastEventId) } });
  const leases = () => stack.api.redis.zcount(stack.api.keys.userConnections(user.id), String(Date.now()), '+inf');

  it('resuming a closed room at or after its closing status is 204 (HEAD too), and a Socket.IO subscribe acks ended', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 8 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 1 } });
    await act(stack, user, room.id, 'start');
    const all = await roomEvents(stack, user, room.id);
    const last = all.events.at(-1)!;
    expect(last).toMatchObject({ event: 'status', data: { status: 'finished' } });

    for (const after of [last.id, last.id + 1, 1_000_000]) expect((await events(room.id, after)).status).toBe(204);
    expect((await events(room.id, last.id, 'HEAD')).status).toBe(204);
    // Before it, the stream still ends with the closing status.
    const tail = await roomEvents(stack, user, room.id, { lastEventId: last.id - 1 });
    expect(tail.events.map((e) => e.id)).toEqual([last.id]);
    await until('no stream holds a connection lease', async () => (await leases()) === 0);

    const socket = socketFor(stack, user);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    expect(await subscribe(socket, `discussion:${room.id}`, last.id)).toEqual({ ok: true, ended: true });
    expect(await subscribe(socket, `discussion:${room.id}`, last.id + 5)).toEqual({ ok: true, ended: true });
    expect(await subscribe(socket, `discussion:${room.id}`, last.id - 1)).toEqual({ ok: true });
    socket.close();
  }, 300_000);

  it('a closed room whose stream expired snapshots at its closing seq, and resuming from there is 204', async () => {
    const room = await makeRoom(stack, user, { agentIds: (await makeAgents(stack, user, 2)).map((a) => a.id) });
    expect((await stack.request('POST', `/v1/discussions/${room.id}/messages`, { user, body: { text: 'hello' } })).status).toBe(201);
    await act(stack, user, room.id, 'stop');
    const all = await roomEvents(stack, user, room.id);
    const closing = all.events.at(-1)!;
    expect(closing).toMatchObject({ event: 'status', data: { status: 'stopped' } });
    await stack.api.redis.del(stack.api.keys.roomStream(room.id), stack.api.keys.roomSeq(room.id));

    for (const after of [undefined, 0, 1]) {
      const sse = await roomEvents(stack, user, room.id, { lastEventId: after, stopAfter: (e) => e.event === 'snapshot' });
      expect(sse.events).toEqual([
        expect.objectContaining({ event: 'snapshot', id: closing.id, data: expect.objectContaining({ seq: closing.id, status: 'stopped' }) }),
      ]);
      expect(sse.events[0]!.data.messages.map((m: any) => m.text)).toEqual(['hello']);
    }
    // An EventSource reconnects with the snapshot's id: it is told the stream has ended, however far ahead it claims to be.
    for (const after of [closing.id, 1_000_000]) expect((await events(room.id, after)).status).toBe(204);
    const socket = socketFor(stack, user);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    expect(await subscribe(socket, `discussion:${room.id}`, closing.id)).toEqual({ ok: true, ended: true });
    socket.close();
  });

  it('an open room resumed beyond its last seq stays open and relays what the room says next', async () => {
    const room = await makeRoom(stack, user, { agentIds: (await makeAgents(stack, user, 2)).map((a) => a.id) });
    const head = await events(room.id, 1000, 'HEAD');
    expect(head.status).toBe(200);
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const reading = readSse(
      `${stack.base}/v1/discussions/${room.id}/events`,
      { ...user.auth, 'last-event-id': '1000' },
      {
        timeoutMs: 60_000,
        onOpen: () => opened(),
        stopAfter: (e) => e.event === 'status',
      },
    );
    await open;
    expect((await stack.request('POST', `/v1/discussions/${room.id}/messages`, { user, body: { text: 'still here' } })).status).toBe(201);
    await act(stack, user, room.id, 'stop');
    const { status, events: got } = await reading;
    expect(status).toBe(200);
    expect(got.map((e) => [e.event, e.id])).toEqual([
      ['human_message', 1],
      ['status', 2],
    ]);
  });
});

describe('access', () => {
  it('nobody without access can join or read; shared users read and post; public rooms are read-only', async () => {
    const owner = await stack.user('member');
    const stranger = await stack.user('member');
    const friend = await stack.user('viewer');
    const admin = await stack.user('admin');
    const agents = await makeAgents(stack, owner, 2, { num_predict: 8 });
    const priv = await makeRoom(stack, owner, { agentIds: agents.map((a) => a.id), visibility: 'private' });
    const shared = await makeRoom(stack, owner, { agentIds: agents.map((a) => a.id), visibility: 'shared', sharedWith: [friend.id] });
    const pub = await makeRoom(stack, owner, { agentIds: agents.map((a) => a.id), visibility: 'public' });
    const get = (u: TestUser, path: string) => stack.request('GET', path, { user: u });
    const post = (u: TestUser, path: string, body?: unknown) => stack.request('POST', path, { user: u, body });
    const sse = async (u: TestUser, id: string) => (await readSse(`${stack.base}/v1/discussions/${id}/events`, u.auth, { timeoutMs: 2000 })).status;
    const join = async (u: TestUser, id: string) => {
      const s = socketFor(stack, u);
      await new Promise<void>((r) => s.once('connect', () => r()));
      const ack = await subscribe(s, `discussion:${id}`);
      s.close();
      return ack;
    };

    // Private: a stranger sees nothing at all — not the room, its transcript, its stream or its socket room.
    for (const path of [`/v1/discussions/${priv.id}`, `/v1/discussions/${priv.id}/transcript`, `/v1/discussions/${priv.id}/compare/${pub.id}`])
      expect((await get(stranger, path)).status).toBe(404);
    expect(await sse(stranger, priv.id)).toBe(404);
    expect(await join(stranger, priv.id)).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    for (const action of ['start', 'pause', 'interrupt', 'messages', 'fork']) {
      expect(
        (await post(stranger, `/v1/discussions/${priv.id}/${action}`, action === 'messages' ? { text: 'hi' } : action === 'fork' ? { fromTurn: 0 } : undefined))
          .status,
      ).toBe(404);
    }
    const listed = (await get(stranger, '/v1/discussions?limit=100')).json.items.map((d: any) => d.id);
    expect(listed).not.toContain(priv.id);
    expect(listed).not.toContain(shared.id);
    expect(listed).toContain(pub.id);
    // The owner's agents are the owner's.
    expect((await get(stranger, `/v1/agents/${agents[0].id}`)).status).toBe(404);
    expect((await post(stranger, '/v1/discussions', { topic: 't', agentIds: agents.map((a) => a.id) })).status).toBe(400);

    // Shared: the named user reads, joins and posts, but does not control.
    expect((await get(friend, `/v1/discussions/${shared.id}`)).status).toBe(200);
    expect(await sse(friend, shared.id)).toBe(200);
    expect(await join(friend, shared.id)).toEqual({ ok: true });
    expect((await post(friend, `/v1/discussions/${shared.id}/messages`, { text: 'hello from a friend' })).status).toBe(201);
    expect((await post(friend, `/v1/discussions/${shared.id}/start`)).status).toBe(403);
    expect((await get(friend, `/v1/discussions/${priv.id}`)).status).toBe(404);

    // Public: anyone signed in reads and joins; nobody but the owner and admins posts or controls.
    expect((await get(stranger, `/v1/discussions/${pub.id}/transcript`)).status).toBe(200);
    expect(await join(stranger, pub.id)).toEqual({ ok: true });
    expect((await post(stranger, `/v1/discussions/${pub.id}/messages`, { text: 'me too' })).status).toBe(403);
    expect((await post(stranger, `/v1/discussions/${pub.id}/stop`)).status).toBe(403);
    expect((await stack.request('GET', `/v1/discussions/${pub.id}`)).status).toBe(401);

    // Admins see everything.
    expect((await get(admin, `/v1/discussions/${priv.id}`)).status).toBe(200);
    expect(await join(admin, priv.id)).toEqual({ ok: true });
    expect((await get(admin, `/v1/agents/${agents[0].id}`)).status).toBe(200);
  });
});
