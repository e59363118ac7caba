/**
 * Realtime auth: the Socket.IO handshake needs a valid access token or API
 * key; rooms are authorised one by one (another member's job room is
 * JOB_NOT_FOUND and delivers nothing); a revoked session or an expired token
 * ends the connection with `auth_error`, and reconnecting does not get past
 * the handshake. SSE applies the same checks on connect, and ends an open
 * stream with `auth_error` when its session is revoked or the account
 * changes. No workers: a
 * cancel writes the job's `finished` event, which is all the traffic needed.
 */
import { randomUUID } from 'node:crypto';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { activeKey, claimsOf, es256, login, pingJob, rawJwt } from './helpers.ts';

let stack: Stack;
let alice: TestUser;
let bob: TestUser;
const sockets: Socket[] = [];

beforeAll(async () => {
  stack = await startStack({ workers: false });
  alice = await stack.user('member');
  bob = await stack.user('member');
});
afterEach(() => {
  for (const s of sockets.splice(0)) s.disconnect();
});
afterAll(() => stack?.stop());

function open(token: string | undefined): Socket {
  const s = connect(stack.base, {
    path: '/socket.io',
    auth: token === undefined ? {} : { token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  sockets.push(s);
  return s;
}

function connected(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', (err) => reject(err));
  });
}

function refused(s: Socket): Promise<Error & { data?: { code: string; message: string } }> {
  return new Promise((resolve, reject) => {
    s.once('connect', () => reject(new Error('connected, but should have been refused')));
    s.once('connect_error', (err) => resolve(err as Error & { data?: { code: string; message: string } }));
  });
}

const subscribe = (s: Socket, room: string) => s.timeout(5000).emitWithAck('subscribe', { room }) as Promise<{ ok: boolean; error?: { code: string } }>;

async function alicesJob(): Promise<string> {
  const r = await stack.request('POST', '/v1/jobs', { user: alice, body: pingJob });
  return r.json.id as string;
}

/** Resolves with the auth_error payload and the disconnect reason, or rejects after `ms`. */
function kickedOut(s: Socket, ms: number): Promise<{ error: { code: string; message: string }; reason: string; afterMs: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    let error: { code: string; message: string } | undefined;
    const timer = setTimeout(() => reject(new Error(`still connected after ${ms} ms`)), ms);
    s.on('auth_error', (e) => (error = e));
    s.on('disconnect', (reason) => {
      clearTimeout(timer);
      resolve({ error: error!, reason, afterMs: Date.now() - t0 });
    });
  });
}

/** An SSE reader, and a promise that resolves once the server answered 200 (it subscribes before that). */
function openSse(url: string, headers: Record<string, string>, timeoutMs: number) {
  let markOpen!: () => void;
  let fail!: (err: Error) => void;
  const opened = new Promise<void>((resolve, reject) => ((markOpen = resolve), (fail = reject)));
  const reading = readSse(url, headers, { timeoutMs, onOpen: (status) => (status === 200 ? markOpen() : fail(new Error(`SSE answered ${status}`))) });
  return { opened, reading };
}

describe('Socket.IO handshake', () => {
  it('refuses a connection without a token', async () => {
    const err = await refused(open(undefined));
    expect(err.data?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a connection with a bad token', async () => {
    const err = await refused(open('not-a-token'));
    expect(err.data?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a connection with the token of a revoked session', async () => {
    const s = await login(stack, alice);
    await stack.request('POST', '/v1/auth/logout', { headers: s.auth });
    const err = await refused(open(s.token));
    expect(err.data?.code).toBe('UNAUTHENTICATED');
  });

  it('accepts a valid access token', async () => {
    await connected(open(alice.token));
  });

  it('accepts an API key', async () => {
    const key = await stack.request('POST', '/v1/auth/api-keys', { user: alice, body: { name: 'socket' } });
    await connected(open(key.json.key));
  });
});

describe('job rooms', () => {
  it("answers JOB_NOT_FOUND to a member subscribing to another member's job", async () => {
    const id = await alicesJob();
    const s = open(bob.token);
    await connected(s);
    const ack = await subscribe(s, `job:${id}`);
    expect(ack).toMatchObject({ ok: false, error: { code: 'JOB_NOT_FOUND' } });
  });

  it("delivers nothing of another member's job to the refused subscriber, while the owner gets its events", async () => {
    const id = await alicesJob();
    const intruder = open(bob.token);
    const owner = open(alice.token);
    await Promise.all([connected(intruder), connected(owner)]);
    const seenByIntruder: { event: string; data: { room?: string } }[] = [];
    intruder.onAny((event, data) => seenByIntruder.push({ event, data }));
    expect((await subscribe(intruder, `job:${id}`)).ok).toBe(false);
    expect((await subscribe(owner, `job:${id}`)).ok).toBe(true);
    // A barrier: the intruder also watches a job of its own, which ends after Alice's. Events reach a
    // socket in the order the server relays them, so once Bob's `finished` is in, Alice's would be too.
    const bobs = (await stack.request('POST', '/v1/jobs', { user: bob, body: pingJob })).json.id as string;
    expect((await subscribe(intruder, `job:${bobs}`)).ok).toBe(true);
    const finished = new Promise((resolve) => owner.on('finished', resolve));
    await stack.request('DELETE', `/v1/jobs/${id}`, { user: alice });
    expect(await finished).toMatchObject({ room: `job:${id}`, state: 'cancelled' });
    const barrier = new Promise((resolve) => intruder.on('finished', resolve));
    await stack.request('DELETE', `/v1/jobs/${bobs}`, { user: bob });
    expect(await barrier).toMatchObject({ room: `job:${bobs}`, state: 'cancelled' });
    expect(seenByIntruder.length).toBeGreaterThan(0);
    expect(seenByIntruder.filter((e) => e.data?.room !== `job:${bobs}`)).toEqual([]);
  });

  it('answers JOB_NOT_FOUND for a job that does not exist', async () => {
    const s = open(bob.token);
    await connected(s);
    expect(await subscribe(s, `job:${randomUUID()}`)).toMatchObject({ ok: false, error: { code: 'JOB_NOT_FOUND' } });
  });

  it("lets an operator subscribe to a member's job", async () => {
    const id = await alicesJob();
    const op = await stack.user('operator');
    const s = open(op.token);
    await connected(s);
    expect(await subscribe(s, `job:${id}`)).toEqual({ ok: true });
  });
});

describe('ending connections', () => {
  it('sends auth_error and disconnects when the session is revoked', async () => {
    const session = await login(stack, alice);
    const s = open(session.token);
    await connected(s);
    const kicked = kickedOut(s, 15_000);
    await stack.request('POST', '/v1/auth/logout', { headers: session.auth });
    const { error, reason } = await kicked;
    expect(error).toMatchObject({ code: 'SESSION_REVOKED' });
    expect(reason).toBe('io server disconnect');
  });

  it('keeps a socket in its credential rooms when it asks to leave them (refused as any other room), so revocation still reaches it at once', async () => {
    const session = await login(stack, alice);
    const claims = JSON.parse(Buffer.from(session.token.split('.')[1]!, 'base64url').toString()) as { sid: string; sub: string };
    const s = open(session.token);
    await connected(s);
    for (const room of [`auth:session:${claims.sid}`, `auth:user:${claims.sub}`, 'operators'])
      expect(await new Promise((r) => s.emit('unsubscribe', { room }, r))).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    const kicked = kickedOut(s, 15_000);
    await stack.request('POST', '/v1/auth/logout', { headers: session.auth });
    // Only the broadcast to the credential's room carries the reason; the once-a-second recheck does not.
    expect((await kicked).error).toMatchObject({ code: 'SESSION_REVOKED', reason: expect.any(String) });
  });

  it('does not let a revoked session back in by reconnecting', async () => {
    const session = await login(stack, alice);
    const s = open(session.token);
    await connected(s);
    const kicked = kickedOut(s, 15_000);
    await stack.request('POST', '/v1/auth/logout', { headers: session.auth });
    await kicked;
    const again = refused(s);
    s.connect();
    expect((await again).data?.code).toBe('UNAUTHENTICATED');
  });

  it('sends auth_error TOKEN_EXPIRED and disconnects when the access token expires', async () => {
    const key = await activeKey(stack);
    const now = Math.floor(Date.now() / 1000);
    const claims = claimsOf(alice.token);
    const shortLived = rawJwt(
      { alg: 'ES256', typ: 'JWT', kid: key.kid },
      {
        sub: alice.id,
        sid: claims.sid,
        role: 'member',
        iss: stack.api.config.auth.issuer,
        aud: stack.api.config.auth.audience,
        iat: now,
        nbf: now,
        exp: now + 2,
      },
      es256(key.privatePem),
    );
    const s = open(shortLived);
    await connected(s);
    const { error } = await kickedOut(s, 15_000);
    expect(error).toMatchObject({ code: 'TOKEN_EXPIRED' });
  });

  it('disconnects an API-key connection when the key is revoked', async () => {
    const key = await stack.request('POST', '/v1/auth/api-keys', { user: alice, body: { name: 'socket' } });
    const s = open(key.json.key);
    await connected(s);
    const kicked = kickedOut(s, 15_000);
    await stack.request('DELETE', `/v1/auth/api-keys/${key.json.id}`, { user: alice });
    expect((await kicked).error).toMatchObject({ code: 'SESSION_REVOKED' });
  });
});

describe('SSE', () => {
  it('answers 401 without a token', async () => {
    const id = await alicesJob();
    const r = await readSse(`${stack.base}/v1/jobs/${id}/events`, {}, { timeoutMs: 3000 });
    expect(r.status).toBe(401);
  });

  it('answers 401 to the token of a revoked session', async () => {
    const id = await alicesJob();
    const session = await login(stack, alice);
    await stack.request('POST', '/v1/auth/logout', { headers: session.auth });
    const r = await readSse(`${stack.base}/v1/jobs/${id}/events`, session.auth, { timeoutMs: 3000 });
    expect(r.status).toBe(401);
  });

  it('ends an open stream with auth_error when its session is revoked', async () => {
    const id = await alicesJob();
    const session = await login(stack, alice);
    const { opened, reading } = openSse(`${stack.base}/v1/jobs/${id}/events`, session.auth, 15_000);
    await opened;
    await stack.request('POST', '/v1/auth/logout', { headers: session.auth });
    const r = await reading;
    expect(r.status).toBe(200);
    expect(r.events.at(-1)).toMatchObject({ event: 'auth_error', data: { code: 'SESSION_REVOKED' } });
    expect(r.events.some((e) => e.event === 'finished')).toBe(false);
    // The job itself is untouched: its owner's other session still reads it.
    expect((await stack.request('GET', `/v1/jobs/${id}`, { user: alice })).status).toBe(200);
  });

  it("ends an open stream when the account's role changes", async () => {
    const admin = await stack.user('admin');
    const carol = await stack.user('member');
    const r0 = await stack.request('POST', '/v1/jobs', { user: carol, body: pingJob });
    const { opened, reading } = openSse(`${stack.base}/v1/jobs/${r0.json.id}/events`, carol.auth, 15_000);
    await opened;
    expect((await stack.request('PATCH', `/v1/admin/users/${carol.id}`, { user: admin, body: { role: 'viewer' } })).status).toBe(200);
    const r = await reading;
    expect(r.events.at(-1)).toMatchObject({ event: 'auth_error', data: { code: 'SESSION_REVOKED' } });
  });

  it('streams the owner its own job', async () => {
    const id = await alicesJob();
    const { opened, reading } = openSse(`${stack.base}/v1/jobs/${id}/events`, alice.auth, 5000);
    await opened;
    await stack.request('DELETE', `/v1/jobs/${id}`, { user: alice });
    const r = await reading;
    expect(r.status).toBe(200);
    expect(r.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'cancelled' } });
  });
});
