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

let stack: Stack;
const users = {} as Record<Role, TestUser>;
const queue = 'system';

beforeAll(async () => {
  stack = await startStack({ workers: false });
  for (const role of ['admin', 'operator', 'member', 'viewer'] as Role[]) users[role] = await stack.user(role);
});
afterAll(() => stack?.stop());

const board = (method: string, path: string, user?: TestUser, headers: Record<string, string> = {}) => stack.request(method, `/admin/queues${path}`, { user, headers });

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
