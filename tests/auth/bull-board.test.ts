/**
 * Bull Board at /admin/queues, per role: anonymous 401 (problem+json) on the
 * page and on its JSON API; viewer and member 403; operator 200 but
 * read-only (every write is 403 problem+json, before the board sees it);
 * admin 200 with writes. Write calls used: PUT /api/queues/<q>/retry/failed,
 * PUT /api/queues/<q>/pause and PUT /api/queues/pause (pause all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../api/auth/permissions.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { login } from './helpers.ts';

let stack: Stack;
const users = {} as Record<Role, TestUser>;
const queue = 'system';

beforeAll(async () => {
  // One trusted proxy hop, so a request can say it came over TLS (X-Forwarded-Proto) as it would behind one.
  stack = await startStack({ workers: false, env: { PARLEY_TRUST_PROXY: '1', PARLEY_BOARD_SESSION_TTL_S: '600' } });
  for (const role of ['admin', 'operator', 'member', 'viewer'] as Role[]) users[role] = await stack.user(role);
});
afterAll(() => stack?.stop());

const board = (method: string, path: string, user?: TestUser, headers: Record<string, string> = {}) =>
  stack.request(method, `/admin/queues${path}`, { user, headers });

describe('anonymous', () => {
  it('gets 401 problem+json on the board page', async () => {
    const r = await board('GET', '/');
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(r.json.code).toBe('UNAUTHENTICATED');
  });

  it('gets 401 problem+json on the JSON API', async () => {
    const r = await board('GET', '/api/queues');
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('gets 401 on a write call', async () => {
    expect((await board('PUT', `/api/queues/${queue}/pause`)).status).toBe(401);
  });

  it('gets 401 with a bad token in the cookie', async () => {
    expect((await board('GET', '/api/queues', undefined, { cookie: 'parley_token=not-a-token' })).status).toBe(401);
  });
});

describe('viewers and members', () => {
  for (const role of ['viewer', 'member'] as const) {
    it(`${role}: 403 on the page and the API`, async () => {
      const page = await board('GET', '/', users[role]);
      const api = await board('GET', '/api/queues', users[role]);
      expect([page.status, api.status]).toEqual([403, 403]);
      expect(api.json.code).toBe('FORBIDDEN');
    });
  }
});

describe('operators (read-only)', () => {
  it('get the board page', async () => {
    const r = await board('GET', '/', users.operator);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('read the queues through the JSON API, marked read-only', async () => {
    const r = await board('GET', '/api/queues', users.operator);
    expect(r.status).toBe(200);
    const q = r.json.queues.find((x: { name: string }) => x.name === queue);
    expect(q.readOnlyMode).toBe(true);
  });

  it('are refused a retry of failed jobs with 403 problem+json', async () => {
    const r = await board('PUT', `/api/queues/${queue}/retry/failed`, users.operator);
    expect(r.status).toBe(403);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.json.code).toBe('FORBIDDEN');
  });

  it('are refused pausing a queue, which keeps running', async () => {
    const r = await board('PUT', `/api/queues/${queue}/pause`, users.operator);
    expect(r.status).toBe(403);
    expect(await stack.api.jobs.queues.system.isPaused()).toBe(false);
  });

  it('are refused pause-all, and every queue keeps running', async () => {
    const r = await board('PUT', '/api/queues/pause', users.operator);
    expect(r.status).toBe(403);
    for (const q of Object.values(stack.api.jobs.queues)) expect(await q.isPaused()).toBe(false);
  });

  it('can use the board from a browser: ?token= sets an HttpOnly cookie that then authenticates', async () => {
    const res = await fetch(`${stack.base}/admin/queues/?token=${encodeURIComponent(users.operator.token)}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^parley_token=/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const api = await board('GET', '/api/queues', undefined, { cookie: cookie.split(';')[0]! });
    expect(api.status).toBe(200);
  });
});

describe('admins (full)', () => {
  it('get the board page', async () => {
    expect((await board('GET', '/', users.admin)).status).toBe(200);
  });

  it('see the queues as writable', async () => {
    const r = await board('GET', '/api/queues', users.admin);
    expect(r.json.queues.find((x: { name: string }) => x.name === queue).readOnlyMode).toBe(false);
  });

  it('may retry failed jobs', async () => {
    const r = await board('PUT', `/api/queues/${queue}/retry/failed`, users.admin);
    expect(r.status).toBe(200);
  });

  it('may pause and resume a queue', async () => {
    try {
      expect((await board('PUT', `/api/queues/${queue}/pause`, users.admin)).status).toBe(200);
      expect(await stack.api.jobs.queues.system.isPaused()).toBe(true);
    } finally {
      await board('PUT', `/api/queues/${queue}/resume`, users.admin);
    }
    expect(await stack.api.jobs.queues.system.isPaused()).toBe(false);
  });
});

describe('the board cookie (issue 16)', () => {
  const open = (token: string, headers: Record<string, string> = {}) =>
    fetch(`${stack.base}/admin/queues/?token=${encodeURIComponent(token)}`, { redirect: 'manual', headers });
  const cookieOf = (res: Response) => res.headers.get('set-cookie') ?? '';

  it('exchanges ?token= at once for an opaque, short-lived, path-scoped, HttpOnly, SameSite=Strict cookie', async () => {
    const s = await login(stack, users.operator);
    const res = await open(s.token);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/admin/queues/');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const cookie = cookieOf(res);
    const value = /^parley_token=([^;]+)/.exec(cookie)![1]!;
    expect(value).not.toContain(s.token.slice(0, 20));
    expect(cookie).toMatch(/; Path=\/admin\/queues(;|$)/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const maxAge = Number(/Max-Age=(\d+)/i.exec(cookie)![1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(Math.min(600, stack.api.config.auth.accessTtlSeconds));
    expect(cookie).not.toMatch(/;\s*Secure/i);
    expect((await board('GET', '/api/queues', undefined, { cookie: `parley_token=${value}` })).status).toBe(200);
  });

  it('marks the cookie Secure when the request came over TLS', async () => {
    const s = await login(stack, users.operator);
    expect(cookieOf(await open(s.token, { 'x-forwarded-proto': 'https' }))).toMatch(/;\s*Secure/i);
  });

  it('no longer takes a raw access token in the cookie', async () => {
    const s = await login(stack, users.admin);
    expect((await board('GET', '/api/queues', undefined, { cookie: `parley_token=${s.token}` })).status).toBe(401);
  });

  it('ends with the session: after logout the cookie is refused', async () => {
    const s = await login(stack, users.operator);
    const cookie = cookieOf(await open(s.token)).split(';')[0]!;
    expect((await board('GET', '/api/queues', undefined, { cookie })).status).toBe(200);
    expect((await stack.request('POST', '/v1/auth/logout', { headers: s.auth })).status).toBe(204);
    expect((await board('GET', '/api/queues', undefined, { cookie })).status).toBe(401);
  });

  it('sets no cookie for a role without queues:read', async () => {
    const res = await open((await login(stack, users.member)).token);
    expect(res.status).toBe(403);
    expect(cookieOf(res)).toBe('');
  });
});

describe('API keys on the board (issue 16)', () => {
  it('are refused with 401, as a header and as ?token=, and get no cookie', async () => {
    const s = await login(stack, users.admin);
    const key = (await stack.request('POST', '/v1/auth/api-keys', { headers: s.auth, body: { name: 'board' } })).json.key as string;
    const header = await board('GET', '/api/queues', undefined, { authorization: `Bearer ${key}` });
    expect(header.status).toBe(401);
    expect(header.json.detail).toMatch(/API key/);
    const query = await fetch(`${stack.base}/admin/queues/?token=${encodeURIComponent(key)}`, { redirect: 'manual' });
    expect(query.status).toBe(401);
    expect(query.headers.get('set-cookie')).toBeNull();
  });
});

describe('admin actions through the board (issue 16)', () => {
  it('are audited with the admin, the queue and the outcome, and counted', async () => {
    const s = await login(stack, users.admin);
    const metric = async () =>
      Number(
        /^parley_board_actions_total\{method="PUT",outcome="success"\} (\d+)/m.exec((await stack.request('GET', '/metrics', { headers: s.auth })).text)?.[1] ??
          0,
      );
    const before = await metric();
    const since = ((await stack.api.db('audit_events').max({ id: 'id' }).first()) as { id: number }).id;
    try {
      expect((await board('PUT', `/api/queues/${queue}/pause`, undefined, s.auth)).status).toBe(200);
    } finally {
      await board('PUT', `/api/queues/${queue}/resume`, undefined, s.auth);
    }
    await expect.poll(async () => (await stack.api.db('audit_events').where({ action: 'queues.board_action' }).andWhere('id', '>', since)).length).toBe(2);
    const rows = await stack.api.db('audit_events').where({ action: 'queues.board_action' }).andWhere('id', '>', since).orderBy('id');
    expect(rows[0]).toMatchObject({
      actor_id: users.admin.id,
      outcome: 'success',
      target_type: 'queue',
      target_id: queue,
      details: { method: 'PUT', path: `/admin/queues/api/queues/${queue}/pause`, status: 200 },
    });
    expect(rows[1].details.path).toMatch(/resume$/);
    expect(await metric()).toBe(before + 2);
  });

  it('does not audit reads', async () => {
    const since = ((await stack.api.db('audit_events').max({ id: 'id' }).first()) as { id: number }).id;
    expect((await board('GET', '/api/queues', users.admin)).status).toBe(200);
    expect(await stack.api.db('audit_events').where({ action: 'queues.board_action' }).andWhere('id', '>', since)).toHaveLength(0);
  });
});
