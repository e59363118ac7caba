/**
 * The SDK client against the real API: problem+json mapped to ParleyError,
 * interceptors, paging, and every kind of credential (token, API key,
 * password sign-in, a saved refresh token) with refresh rotation.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, isForbidden, isNotFound, isParleyError, isUnauthenticated, isValidationError, ParleyError, type Session } from '../../sdk/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let member: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: ['system'], env: { PARLEY_CORS_ORIGINS: 'http://arena.test' } });
  member = await stack.user('member');
});
afterAll(async () => {
  await stack?.stop();
});

const caught = async (p: Promise<unknown>): Promise<ParleyError> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof ParleyError) return err;
    throw err;
  }
  throw new Error('expected a ParleyError');
};

describe('ParleyError', () => {
  it('carries the problem: status, code, detail and the request id of the answer', async () => {
    const ids: string[] = [];
    const client = createClient({
      baseUrl: stack.base,
      auth: member.token,
      interceptors: [{ onResponse: ({ response }) => void ids.push(response.headers.get('x-request-id')!) }],
    });
    const err = await caught(client.jobs.get(randomUUID()));
    expect(err).toMatchObject({ name: 'ParleyError', status: 404, code: 'JOB_NOT_FOUND', title: 'Job not found' });
    expect(err.requestId).toBe(ids[0]);
    expect(isNotFound(err)).toBe(true);
    expect(err.is('JOB_NOT_FOUND')).toBe(true);
    expect(isParleyError(err, 'RATE_LIMITED')).toBe(false);
  });

  it('lists the field errors of a 400', async () => {
    const client = createClient({ baseUrl: stack.base, auth: member.token });
    // @ts-expect-error messages must be chat messages: the SDK's types refuse this before the API does
    const err = await caught(client.jobs.submit('llm.chat', { messages: [{ role: 'wizard', content: 'hi' }] }));
    expect(isValidationError(err)).toBe(true);
    expect(err.status).toBe(400);
    expect(err.errors?.map((e) => e.path)).toContain('input.messages.0.role');
  });

  it('is UNAUTHENTICATED for a bad token and FORBIDDEN for a role without the permission', async () => {
    const stranger = createClient({ baseUrl: stack.base, auth: 'not-a-token' });
    expect(isUnauthenticated(await caught(stranger.auth.me()))).toBe(true);
    const viewer = await stack.user('viewer');
    const err = await caught(createClient({ baseUrl: stack.base, auth: viewer.token }).jobs.submit('system.ping', {}));
    expect(isForbidden(err)).toBe(true);
    expect(err.detail).toContain('jobs:submit');
  });
});

describe('interceptors', () => {
  it('change requests before they go and see every response', async () => {
    const seen: { method: string; status: number }[] = [];
    const client = createClient({ baseUrl: stack.base, auth: member.token });
    const remove = client.use({
      onRequest: (req) => void req.headers.set('x-request-id', 'trace-0123456789'),
      onResponse: ({ request, response }) => void seen.push({ method: request.method, status: response.status }),
    });
    let echoed: string | null = null;
    client.use({ onResponse: ({ response }) => void (echoed = response.headers.get('x-request-id')) });
    await client.auth.me();
    // The API adopts a well-formed incoming request id: the header reached it.
    expect(echoed).toBe('trace-0123456789');
    expect(seen).toEqual([{ method: 'GET', status: 200 }]);
    remove();
    await client.auth.me();
    expect(seen).toHaveLength(1);
    expect(echoed).not.toBe('trace-0123456789');
  });
});

describe('CORS for a browser client on another origin', () => {
  it('lets it send what the SDK sends and read the headers it reads', async () => {
    const preflight = await fetch(`${stack.base}/v1/jobs`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://arena.test',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,idempotency-key',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase().split(',')).toEqual(
      expect.arrayContaining(['authorization', 'idempotency-key', 'last-event-id']),
    );
    const res = await fetch(`${stack.base}/v1/auth/me`, { headers: { origin: 'http://arena.test', ...member.auth } });
    expect(res.headers.get('access-control-allow-origin')).toBe('http://arena.test');
    expect(res.headers.get('access-control-expose-headers')?.split(',')).toEqual(
      expect.arrayContaining(['X-Request-Id', 'Retry-After', 'RateLimit', 'ETag', 'Idempotent-Replayed']),
    );
  });
});

describe('paging', () => {
  it('walks every page with an async iterator', async () => {
    const user = await stack.user('member');
    const client = createClient({ baseUrl: stack.base, auth: user.token });
    const submitted = [];
    for (let i = 0; i < 3; i++) submitted.push((await client.jobs.submit('system.ping', { echo: `p${i}` })).id);
    const pages = [];
    for await (const page of client.jobs.list({ limit: 2 }).pages()) pages.push(page.items.length);
    expect(pages).toEqual([2, 1]);
    const ids = [];
    for await (const job of client.jobs.list({ limit: 1, kind: 'system.ping' })) ids.push(job.id);
    expect(ids.sort()).toEqual(submitted.sort());
  });
});

describe('credentials', () => {
  it('sends an API key', async () => {
    const created = await stack.request('POST', '/v1/auth/api-keys', {
      user: member,
      body: { name: `sdk-${randomUUID().slice(0, 6)}`, scopes: ['jobs:read', 'sessions:self'] },
    });
    const client = createClient({ baseUrl: stack.base, auth: { apiKey: created.json.key } });
    expect(await client.auth.me()).toMatchObject({ id: member.id, authenticatedWith: 'apiKey' });
  });

  it('signs in with a password and keeps the session', async () => {
    const sessions: (Session | null)[] = [];
    const client = createClient({
      baseUrl: stack.base,
      auth: { username: member.username, password: member.password, onSession: (s) => void sessions.push(s) },
    });
    expect((await client.auth.me()).username).toBe(member.username);
    expect(sessions).toHaveLength(1);
    expect(client.auth.session()?.refreshToken).toBe(sessions[0]!.refreshToken);
    await client.auth.me();
    expect(sessions).toHaveLength(1);
  });

  it('renews a rejected access token from a saved refresh token, rotating it, once for concurrent callers', async () => {
    const login = await stack.request('POST', '/v1/auth/token', {
      body: `grant_type=password&username=${member.username}&password=${encodeURIComponent(member.password)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const saved = login.json.refresh_token as string;
    const sessions: (Session | null)[] = [];
    const client = createClient({
      baseUrl: stack.base,
      auth: { refreshToken: saved, accessToken: 'expired-or-forged', onSession: (s) => void sessions.push(s) },
    });
    const answers = await Promise.all([client.auth.me(), client.auth.me(), client.auth.me()]);
    expect(answers.map((a) => a.id)).toEqual([member.id, member.id, member.id]);
    // One refresh for the three callers: a second use of the same refresh token would revoke the session.
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.refreshToken).not.toBe(saved);
    expect((await client.auth.me()).id).toBe(member.id);
  });

  it('ends a session whose refresh token is refused with UNAUTHENTICATED', async () => {
    const sessions: (Session | null)[] = [];
    const client = createClient({ baseUrl: stack.base, auth: { refreshToken: `${randomUUID()}.nope`, onSession: (s) => void sessions.push(s) } });
    const err = await caught(client.auth.me());
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(sessions).toEqual([null]);
  });
});

describe('token refresh before expiry', () => {
  let short: Stack;
  beforeAll(async () => {
    short = await startStack({ workers: false, env: { PARLEY_ACCESS_TOKEN_TTL_S: '10' } });
  });
  afterAll(async () => {
    await short?.stop();
  });

  it('refreshes an access token close to its expiry, rotating the refresh token, once for concurrent callers', async () => {
    const user = await short.user('member');
    const sessions: Session[] = [];
    const client = createClient({
      baseUrl: short.base,
      auth: { username: user.username, password: user.password, onSession: (s) => void (s && sessions.push(s)) },
    });
    await client.auth.me();
    const first = sessions[0]!;
    expect(first.expiresAt - Date.now()).toBeLessThanOrEqual(10_000);
    // Within the last third of its 10 s life, the next call refreshes first.
    await new Promise((r) => setTimeout(r, 7500));
    await Promise.all([client.auth.me(), client.auth.me()]);
    expect(sessions).toHaveLength(2);
    expect(sessions[1]!.accessToken).not.toBe(first.accessToken);
    expect(sessions[1]!.refreshToken).not.toBe(first.refreshToken);
  });
});
