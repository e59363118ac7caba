/**
 * Issue 16 for the live channels: per-user caps on live connections (SSE
 * and Socket.IO counted together, over every API process), Socket.IO
 * handshakes and subscribes rate limited, slow readers cut off instead of
 * buffered for without bound, and text Postgres could not store refused in
 * the SSE and Socket.IO handlers as on every declared route.
 */
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { io as ioConnect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendRoomEvents, JobStreamWriter } from '../../platform/streams/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { makeAgents, makeRoom } from '../discussions/rooms.ts';
import { rawRequest } from '../auth/helpers.ts';
import { until } from '../support/until.ts';

let stack: Stack;
let limited: Stack;

beforeAll(async () => {
  [stack, limited] = await Promise.all([
    startStack({ workers: false, env: { PARLEY_MAX_CONNECTIONS_PER_USER: '2', PARLEY_SLOW_READER_MAX_BYTES: '65536' } }),
    startStack({ workers: false, env: { PARLEY_RATE_SOCKET_HANDSHAKES_PER_IP: '4', PARLEY_RATE_SOCKET_SUBSCRIBES: '3', PARLEY_RATE_WINDOW_S: '600' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([stack?.stop(), limited?.stop()]);
});

function socketOf(s: Stack, auth: Record<string, unknown>): Socket {
  return ioConnect(s.base, { path: '/socket.io', auth, transports: ['websocket'], reconnection: false });
}

/** Resolves with the handshake's outcome: 'connected', or the connect_error's data. */
function handshake(sock: Socket): Promise<'connected' | { code: string; message: string; retryAfter?: number }> {
  return new Promise((resolve) => {
    sock.once('connect', () => resolve('connected'));
    sock.once('connect_error', (err: Error & { data?: any }) => resolve(err.data ?? { code: err.message, message: err.message }));
  });
}

function subscribe(sock: Socket, payload: unknown): Promise<any> {
  return sock.timeout(10_000).emitWithAck('subscribe', payload);
}

/** An SSE request whose answer we hold open (headers read, body never read). */
async function openSseWith(s: Stack, u: TestUser, roomId: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const res = await fetch(`${s.base}/v1/discussions/${roomId}/events`, { headers: { ...u.auth, ...headers }, signal: controller.signal });
  return { res, close: () => controller.abort() };
}
const openSse = (s: Stack, u: TestUser, roomId: string) => openSseWith(s, u, roomId, {});

const leases = (s: Stack, u: TestUser) => s.api.redis.zcount(s.api.keys.userConnections(u.id), String(Date.now()), '+inf');

async function draftRoom(s: Stack, u: TestUser) {
  const agents = await makeAgents(s, u, 2);
  return makeRoom(s, u, { agentIds: agents.map((a) => a.id) });
}

describe('live connections per user', () => {
  it('refuses a third live connection, SSE or socket, with 429 / RATE_LIMITED, and takes one again when one closes', async () => {
    const u = await stack.user('member');
    const room = await draftRoom(stack, u);
    const a = await openSse(stack, u, room.id);
    const b = await openSse(stack, u, room.id);
    expect([a.res.status, b.res.status]).toEqual([200, 200]);
    expect(await leases(stack, u)).toBe(2);

    const c = await stack.request('GET', `/v1/discussions/${room.id}/events`, { user: u });
    expect(c.status).toBe(429);
    expect(c.json.code).toBe('RATE_LIMITED');
    expect(c.headers.get('retry-after')).toMatch(/^\d+$/);
    const sock = socketOf(stack, { token: u.token });
    expect(await handshake(sock)).toMatchObject({ code: 'RATE_LIMITED' });
    sock.close();

    a.close();
    await until('the closed stream gives its lease back', async () => (await leases(stack, u)) === 1);
    const again = socketOf(stack, { token: u.token });
    expect(await handshake(again)).toBe('connected');
    expect(await leases(stack, u)).toBe(2);
    again.close();
    b.close();
    await until('every lease is back', async () => (await leases(stack, u)) === 0);
  });

  it('answers HEAD on an event stream with the headers and ends it, holding no connection', async () => {
    const u = await stack.user('member');
    const room = await draftRoom(stack, u);
    for (let i = 0; i < 4; i++) {
      // A fresh connection each time: a HEAD left open would keep its connection and its lease.
      const head = await rawRequest(stack, 'HEAD', `/v1/discussions/${room.id}/events`, { headers: u.auth });
      expect(head.status).toBe(200);
      expect(head.headers['content-type']).toMatch(/^text\/event-stream/);
    }
    expect(await leases(stack, u)).toBe(0);
    const a = await openSse(stack, u, room.id);
    expect(a.res.status).toBe(200);
    a.close();
    // An empty Last-Event-ID is no id: the stream starts from the beginning (the EventSource spec), not a 400.
    const empty = await openSseWith(stack, u, room.id, { 'last-event-id': '' });
    expect(empty.res.status).toBe(200);
    empty.close();
    expect((await rawRequest(stack, 'HEAD', `/v1/discussions/${randomUUID()}/events`, { headers: u.auth })).status).toBe(404);
  });

  it('answers an Accept that rules the stream out with 406 / NOT_ACCEPTABLE, holding no connection; wildcards and no Accept get the stream', async () => {
    const u = await stack.user('member');
    const room = await draftRoom(stack, u);
    const job = await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: { echo: 'accept' } } });
    expect(job.status).toBe(202);
    for (const path of [`/v1/discussions/${room.id}/events`, `/v1/jobs/${job.json.id}/events`]) {
      for (const accept of ['application/json', 'text/html, application/xml;q=0.9', 'text/event-stream;q=0, */*']) {
        const r = await stack.request('GET', path, { user: u, headers: { accept } });
        expect(r.status, `${path} with Accept: ${accept}`).toBe(406);
        expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(r.json.code).toBe('NOT_ACCEPTABLE');
      }
      expect(await leases(stack, u)).toBe(0);
    }
    for (const accept of ['text/event-stream', '*/*', 'text/*', 'application/json;q=0.5, text/event-stream']) {
      const ok = await openSseWith(stack, u, room.id, { accept });
      expect(ok.res.status, `Accept: ${accept}`).toBe(200);
      expect(ok.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      ok.close();
    }
    await until('every lease is back', async () => (await leases(stack, u)) === 0);
    // Credentials first: without them it is still a 401, whatever the Accept.
    expect((await stack.request('GET', `/v1/discussions/${room.id}/events`, { headers: { accept: 'application/json' } })).status).toBe(401);
  });

  it("does not count one user's connections against another's", async () => {
    const [u, v] = [await stack.user('member'), await stack.user('member')];
    const room = await draftRoom(stack, u);
    const open = [await openSse(stack, u, room.id), await openSse(stack, u, room.id)];
    const sock = socketOf(stack, { token: v.token });
    expect(await handshake(sock)).toBe('connected');
    sock.close();
    for (const o of open) o.close();
  });
});

describe('a stream that ends between the record read and the stream read', () => {
  // The record goes terminal (a room's row closed) before the last event is appended, so a watcher that read the
  // record a moment earlier finds the end in the stream. Here the record stays open: no workers, the events written by hand.
  it('answers a job whose stream holds its finished as ended, though its record was read as not finished (regression: a resume at that seq stayed open for ever)', async () => {
    const u = await stack.user('member');
    const job = await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: { echo: 'race' } } });
    expect(job.json.state).toBe('queued');
    const writer = new JobStreamWriter(stack.api.redis, stack.api.keys.jobStream(job.json.id), 1, { maxLen: 1000, ttlSeconds: 60 });
    await writer.init();
    expect(await writer.finished({ state: 'completed', result: { echo: 'race' } })).toBe(true);
    for (const after of [writer.seq, 100_000]) {
      const r = await fetch(`${stack.base}/v1/jobs/${job.json.id}/events`, {
        headers: { ...u.auth, 'last-event-id': String(after) },
        signal: AbortSignal.timeout(30_000),
      });
      expect(r.status, `Last-Event-ID ${after}`).toBe(204);
    }
    const sock = socketOf(stack, { token: u.token });
    expect(await handshake(sock)).toBe('connected');
    expect(await new Promise((res) => sock.emit('subscribe', { room: `job:${job.json.id}`, lastSeq: writer.seq }, res))).toEqual({ ok: true, ended: true });
    sock.close();
    await until('every lease is back', async () => (await leases(stack, u)) === 0);
  });

  it('answers a room whose stream ends with its closing status as ended, though its row was read as open (regression: a resume at that seq stayed open for ever)', async () => {
    const u = await stack.user('member');
    const room = await draftRoom(stack, u);
    const [closing] = await appendRoomEvents(stack.api.redis, stack.api.keys, room.id, 0, [{ e: 'status', d: { status: 'stopped' } }]);
    for (const after of [closing!, 100_000]) {
      const r = await fetch(`${stack.base}/v1/discussions/${room.id}/events`, {
        headers: { ...u.auth, 'last-event-id': String(after) },
        signal: AbortSignal.timeout(30_000),
      });
      expect(r.status, `Last-Event-ID ${after}`).toBe(204);
    }
    const sock = socketOf(stack, { token: u.token });
    expect(await handshake(sock)).toBe('connected');
    expect(await new Promise((res) => sock.emit('subscribe', { room: `discussion:${room.id}`, lastSeq: closing }, res))).toEqual({ ok: true, ended: true });
    sock.close();
    await until('every lease is back', async () => (await leases(stack, u)) === 0);
  });

  it('relays the closing status of a room stopped but not yet announced to a viewer resumed beyond its last seq (regression: it never heard it)', async () => {
    const u = await stack.user('member');
    const room = await draftRoom(stack, u);
    const [said] = await appendRoomEvents(stack.api.redis, stack.api.keys, room.id, 0, [{ e: 'status', d: { status: 'paused' } }]);
    // A stop marks the row first and announces once the speaker's partial turn is in.
    await stack.api.db('discussions').where({ id: room.id }).update({ status: 'stopped' });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 60_000);
    const res = await fetch(`${stack.base}/v1/discussions/${room.id}/events`, { headers: { ...u.auth, 'last-event-id': '100000' }, signal: controller.signal });
    expect(res.status).toBe(200);
    await appendRoomEvents(stack.api.redis, stack.api.keys, room.id, 0, [{ e: 'status', d: { status: 'stopped' } }]);
    const body = await res.text();
    clearTimeout(timer);
    const frames = body.split('\n\n').filter((f) => f.startsWith('id: '));
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatch(new RegExp(`^id: ${said! + 1}\nevent: status\ndata: .*"status":"stopped"`));
  });
});

describe('slow readers', () => {
  it('cuts off an SSE reader that leaves more than PARLEY_SLOW_READER_MAX_BYTES unread', async () => {
    const u = await stack.user('member');
    const room = await draftRoom(stack, u);
    // A client that sends its request and then never reads a byte.
    const raw: TcpSocket = tcpConnect(stack.api.port, '127.0.0.1');
    await new Promise<void>((r) => raw.once('connect', () => r()));
    raw.pause();
    raw.write(`GET /v1/discussions/${room.id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${u.auth.authorization}\r\n\r\n`);
    await until('the stream is open', async () => (await leases(stack, u)) === 1);
    const chunk = 'x'.repeat(50_000);
    for (let i = 0; i < 400 && (await leases(stack, u)) > 0; i++) {
      await appendRoomEvents(stack.api.redis, stack.api.keys, room.id, 1, [{ e: 'tokens', d: { turn: 1, agentId: room.agents[0].id, text: chunk } }]);
    }
    await until('the slow reader is cut off and its lease given back', async () => (await leases(stack, u)) === 0);
    raw.destroy();
  });

  it('disconnects a socket that stops reading, instead of buffering for it without bound', async () => {
    const u = await stack.user('member');
    const room = await draftRoom(stack, u);
    const sock = socketOf(stack, { token: u.token });
    expect(await handshake(sock)).toBe('connected');
    expect(await subscribe(sock, { room: `discussion:${room.id}` })).toEqual({ ok: true });
    // Stop reading at the TCP level, under the client library.
    const tcp = (sock.io.engine.transport as unknown as { ws: { _socket: TcpSocket } }).ws._socket;
    tcp.pause();
    const chunk = 'y'.repeat(50_000);
    for (let i = 0; i < 400 && (await leases(stack, u)) > 0; i++) {
      await appendRoomEvents(stack.api.redis, stack.api.keys, room.id, 1, [{ e: 'tokens', d: { turn: 1, agentId: room.agents[0].id, text: chunk } }]);
    }
    await until('the slow socket is disconnected and its lease given back', async () => (await leases(stack, u)) === 0);
    sock.close();
  });
});

describe('text that cannot be stored, on the live channels', () => {
  it('answers SSE with 400 VALIDATION_FAILED naming the query field that holds a NUL', async () => {
    const u = await stack.user('member');
    const r = await stack.request('GET', `/v1/jobs/${randomUUID()}/events?lastEventId=%00`, { user: u });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('VALIDATION_FAILED');
    expect(r.json.errors).toEqual([{ path: 'query.lastEventId', message: expect.stringContaining('NUL') }]);
  });

  it('acks a subscribe holding a NUL or a lone surrogate with VALIDATION_FAILED saying why', async () => {
    const u = await stack.user('member');
    const sock = socketOf(stack, { token: u.token });
    expect(await handshake(sock)).toBe('connected');
    for (const room of [`job:${randomUUID()}\u0000`, `discussion:\ud800${randomUUID()}`]) {
      const ack = await subscribe(sock, { room });
      expect(ack).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('room: must not contain NUL') } });
    }
    sock.close();
  });

  it('acks a room id of 36 characters that is not a UUID with VALIDATION_FAILED, and takes one in upper case as the same room', async () => {
    // The pattern let any 36 of [0-9a-f-] through to Postgres, which refused it: an INTERNAL ack.
    const u = await stack.user('member');
    const sock = socketOf(stack, { token: u.token });
    expect(await handshake(sock)).toBe('connected');
    for (const room of [`job:${'-'.repeat(36)}`, `job:${'a'.repeat(36)}`, `discussion:0000000-00000-0000-0000-000000000000`]) {
      expect(await subscribe(sock, { room })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    }
    const job = await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: {} } });
    expect(await subscribe(sock, { room: `job:${(job.json.id as string).toUpperCase()}` })).toEqual({ ok: true });
    sock.close();
  });

  it('acks an unsubscribe from anything but a job: or discussion: room with VALIDATION_FAILED, as subscribe does', async () => {
    const u = await stack.user('member');
    const sock = socketOf(stack, { token: u.token });
    expect(await handshake(sock)).toBe('connected');
    const unsubscribe = (payload: unknown): Promise<any> => sock.timeout(10_000).emitWithAck('unsubscribe', payload);
    for (const payload of [{ room: 'operators' }, 12, {}, { room: `discussion:xyz` }, { room: `job:${randomUUID()}\u0000` }]) {
      const [sub, unsub] = [await subscribe(sock, payload), await unsubscribe(payload)];
      expect(sub).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: expect.any(String) } });
      expect(unsub).toEqual(sub);
    }
    // A room it may leave, subscribed or not, is still { ok: true }.
    expect(await unsubscribe({ room: `discussion:${randomUUID()}` })).toEqual({ ok: true });
    sock.close();
  });

  it('refuses a handshake whose auth holds a NUL with VALIDATION_FAILED', async () => {
    const sock = socketOf(stack, { token: 'not\u0000a token' });
    expect(await handshake(sock)).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('auth.token') });
    sock.close();
  });
});

describe('Socket.IO rate limits', () => {
  it('acks subscribes past PARLEY_RATE_SOCKET_SUBSCRIBES per window with RATE_LIMITED', async () => {
    const u = await limited.user('member');
    const sock = socketOf(limited, { token: u.token });
    expect(await handshake(sock)).toBe('connected');
    const acks = [];
    for (let i = 0; i < 4; i++) acks.push(await subscribe(sock, { room: `job:${randomUUID()}` }));
    expect(acks.slice(0, 3).map((a) => a.error?.code)).toEqual(['JOB_NOT_FOUND', 'JOB_NOT_FOUND', 'JOB_NOT_FOUND']);
    expect(acks[3]).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED', retryAfter: expect.any(Number) } });
    sock.close();
  });

  it('refuses handshakes past PARLEY_RATE_SOCKET_HANDSHAKES_PER_IP per window with RATE_LIMITED, before any credential check', async () => {
    const u = await limited.user('member');
    let refused: any;
    let accepted = 0;
    for (let i = 0; i < 10 && !refused; i++) {
      const sock = socketOf(limited, { token: u.token });
      const out = await handshake(sock);
      sock.close();
      if (out === 'connected') accepted++;
      else refused = out;
    }
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
    expect(accepted).toBeLessThanOrEqual(4);
    // Even a bad credential is refused by the limiter first: the limit guards the verification work.
    const bad = socketOf(limited, { token: 'garbage' });
    expect(await handshake(bad)).toMatchObject({ code: 'RATE_LIMITED' });
    bad.close();
  });
});
