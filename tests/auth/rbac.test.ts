/**
 * The RBAC matrix: every registered route × admin, operator, member, viewer
 * and anonymous, against real HTTP answers. The expected permission of each
 * route is written out below by hand — not read from the route — and the
 * allow/deny verdict comes from the permission table (api/auth/permissions.ts):
 *
 *   anonymous on a non-public route → 401
 *   a role without the permission   → 403
 *   allowed                         → anything but 401 and 403
 *
 * A meta-test fails when a registered route is missing from the table (or
 * the table names a route that no longer exists). Path parameters become
 * random UUIDs; bodies are minimal. Every request uses a fresh session, so
 * routes that end sessions (logout, DELETE /v1/auth/sessions) cannot spoil
 * the rows after them.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roleHas, type Permission, type Role } from '../../api/auth/permissions.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { login, rawRequest, uniqueName } from './helpers.ts';

/** `authenticated`: any valid credential, whatever its permissions. */
type Expected = 'public' | 'authenticated' | Permission;

/** Method and path → the permission the route must demand. Written by hand on purpose. */
const expected: Record<string, Expected> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /openapi.json': 'public',
  'GET /metrics': 'metrics:read',
  'POST /v1/auth/token': 'public',
  'GET /v1/auth/me': 'sessions:self',
  'GET /v1/auth/sessions': 'sessions:self',
  'DELETE /v1/auth/sessions': 'sessions:self',
  // Any credential may end its own session; another session's id (as here) is checked in the route (sessions:self).
  'DELETE /v1/auth/sessions/:id': 'authenticated',
  'POST /v1/auth/logout': 'authenticated',
  'POST /v1/auth/password': 'sessions:self',
  'GET /v1/auth/api-keys': 'apikeys:self',
  'POST /v1/auth/api-keys': 'apikeys:self',
  'DELETE /v1/auth/api-keys/:id': 'apikeys:self',
  'POST /v1/admin/users': 'users:manage',
  'GET /v1/admin/users': 'users:manage',
  'PATCH /v1/admin/users/:id': 'users:manage',
  'POST /v1/admin/users/:id/password': 'users:manage',
  'GET /v1/admin/audit': 'audit:read',
  'POST /v1/jobs': 'jobs:submit',
  'GET /v1/jobs': 'jobs:read',
  'GET /v1/jobs/:id': 'jobs:read',
  'DELETE /v1/jobs/:id': 'jobs:cancel',
  'POST /v1/jobs/:id/cancel': 'jobs:cancel',
  'POST /v1/jobs/:id/retry': 'jobs:retry',
  'GET /v1/models/status': 'models:read',
  'GET /v1/models': 'models:read',
  'GET /v1/models/running': 'models:read',
  'GET /v1/models/:name': 'models:read',
  'POST /v1/models': 'models:manage',
  'POST /v1/models/pull': 'models:manage',
  'POST /v1/admin/vectors/maintain': 'models:manage',
  'POST /v1/models/:name/load': 'models:manage',
  'POST /v1/models/:name/unload': 'models:manage',
  'POST /v1/models/:name/copy': 'models:admin',
  'DELETE /v1/models/:name': 'models:admin',
  'GET /v1/usage': 'usage:self',
  'GET /v1/admin/usage': 'usage:any',
  'GET /v1/admin/budgets': 'users:manage',
  'PUT /v1/admin/budgets': 'users:manage',
  'POST /v1/agents': 'discussions:write',
  'GET /v1/agents': 'discussions:read',
  'GET /v1/agents/:id': 'discussions:read',
  'PATCH /v1/agents/:id': 'discussions:write',
  'DELETE /v1/agents/:id': 'discussions:write',
  'POST /v1/discussions': 'discussions:write',
  'GET /v1/discussions': 'discussions:read',
  'GET /v1/discussions/:id': 'discussions:read',
  'POST /v1/discussions/:id/start': 'discussions:write',
  'POST /v1/discussions/:id/pause': 'discussions:write',
  'POST /v1/discussions/:id/resume': 'discussions:write',
  'POST /v1/discussions/:id/stop': 'discussions:write',
  'POST /v1/discussions/:id/interrupt': 'discussions:write',
  // Its own write permission, which viewers hold: people a discussion is shared with may interject, a read-only credential may not.
  'POST /v1/discussions/:id/messages': 'discussions:post',
  'POST /v1/discussions/:id/fork': 'discussions:write',
  'GET /v1/discussions/:id/transcript': 'discussions:read',
  'GET /v1/discussions/:id/compare/:otherId': 'discussions:read',
  'POST /v1/code/repositories': 'code:write',
  'GET /v1/code/repositories': 'code:read',
  'GET /v1/code/repositories/:id': 'code:read',
  'DELETE /v1/code/repositories/:id': 'code:write',
  'PUT /v1/code/repositories/:id/archive': 'code:write',
  'POST /v1/code/repositories/:id/index': 'code:write',
  'GET /v1/code/repositories/:id/symbols': 'code:read',
  'GET /v1/code/search': 'code:read',
  'POST /v1/collections': 'collections:write',
  'GET /v1/collections': 'collections:read',
  'GET /v1/collections/:id': 'collections:read',
  'DELETE /v1/collections/:id': 'collections:write',
  'POST /v1/collections/:id/documents': 'collections:write',
  'POST /v1/collections/:id/query': 'collections:read',
  'POST /v1/knowledge/sources': 'knowledge:write',
  'GET /v1/knowledge/sources': 'knowledge:read',
  'GET /v1/knowledge/sources/:id': 'knowledge:read',
  'DELETE /v1/knowledge/sources/:id': 'knowledge:write',
  'GET /v1/knowledge/items/:id/links': 'knowledge:read',
  'PUT /v1/knowledge/items/:id/pin': 'knowledge:write',
  'DELETE /v1/knowledge/items/:id/pin': 'knowledge:write',
  'GET /v1/knowledge/retention': 'knowledge:read',
  'PUT /v1/knowledge/retention': 'knowledge:write',
  'GET /v1/knowledge/search': 'knowledge:read',
};

/** Raw handlers that are not declared routes (so not in stack.api.routes) but sit in the same matrix. */
const streams: Record<string, Expected> = {
  'GET /v1/jobs/:id/events': 'jobs:read',
};

/** Minimal bodies; a route absent here is sent without one. */
const bodies: Record<string, () => { json?: unknown; form?: Record<string, string> }> = {
  'POST /v1/auth/token': () => ({ form: { grant_type: 'password', username: uniqueName('nobody'), password: 'not-a-password' } }),
  'POST /v1/auth/api-keys': () => ({ json: { name: 'matrix' } }),
  'POST /v1/admin/users': () => ({ json: { username: uniqueName('made'), password: `pw-${randomUUID()}`, role: 'viewer' } }),
  'PATCH /v1/admin/users/:id': () => ({ json: { role: 'viewer' } }),
  // A wrong current password: the route runs (400) and nothing changes.
  'POST /v1/auth/password': () => ({ json: { currentPassword: 'not-the-password', newPassword: `pw-${randomUUID()}` } }),
  'POST /v1/admin/users/:id/password': () => ({ json: { password: `pw-${randomUUID()}` } }),
  'POST /v1/jobs': () => ({ json: { kind: 'system.ping', input: {} } }),
};

const roles: Role[] = ['admin', 'operator', 'member', 'viewer'];
type Who = Role | 'anonymous';

let stack: Stack;
const users = {} as Record<Role, TestUser>;

beforeAll(async () => {
  // Limits out of the way: a 429 would hide the 401/403 this suite is about.
  stack = await startStack({
    workers: false,
    env: {
      PARLEY_RATE_TOKEN_PER_IP: '100000',
      PARLEY_RATE_JOBS_WRITE: 'admin=100000,operator=100000,member=100000,viewer=100000,anonymous=100000',
      PARLEY_RATE_JOBS_READ: 'admin=100000,operator=100000,member=100000,viewer=100000,anonymous=100000',
    },
  });
  for (const role of roles) users[role] = await stack.user(role);
});
afterAll(() => stack?.stop());

function verdict(who: Who, access: Expected): 'allowed' | 401 | 403 {
  if (access === 'public') return 'allowed';
  if (who === 'anonymous') return 401;
  if (access === 'authenticated') return 'allowed';
  return roleHas(who, access) ? 'allowed' : 403;
}

async function call(who: Who, key: string) {
  const [method, pattern] = key.split(' ') as [string, string];
  const path = pattern.replace(/:[A-Za-z]+/g, () => randomUUID());
  const headers: Record<string, string> = {};
  if (who !== 'anonymous') headers.authorization = (await login(stack, users[who])).auth.authorization;
  const body = bodies[key]?.();
  let payload: string | undefined;
  if (body?.json !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body.json);
  } else if (body?.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    payload = new URLSearchParams(body.form).toString();
  }
  return rawRequest(stack, method, path, { headers, body: payload });
}

describe('the expectation table', () => {
  it('lists every registered route (add new routes to `expected` with the permission they must demand)', () => {
    const registered = stack.api.routes.map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(registered.filter((k) => !(k in expected))).toEqual([]);
  });

  it('lists no route that is no longer registered', () => {
    const registered = new Set(stack.api.routes.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    expect(Object.keys(expected).filter((k) => !registered.has(k))).toEqual([]);
  });
});

describe('every route × every role and anonymous', () => {
  for (const [key, access] of Object.entries({ ...expected, ...streams })) {
    for (const who of [...roles, 'anonymous'] as Who[]) {
      const want = verdict(who, access);
      it(`${key} as ${who}: ${want === 'allowed' ? 'allowed' : want === 401 ? '401 unauthenticated' : '403 forbidden'}`, async () => {
        const res = await call(who, key);
        if (want === 'allowed') {
          expect([401, 403], `${key} as ${who} answered ${res.status}: ${res.text.slice(0, 200)}`).not.toContain(res.status);
        } else {
          expect(res.status, `${key} as ${who}: ${res.text.slice(0, 200)}`).toBe(want);
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(res.json.code).toBe(want === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN');
          if (want === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
          // RFC 6750 §3.1: the token lacks a scope; the challenge names it.
          else expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="parley", error="insufficient_scope", scope="[a-z:]+"$/);
        }
      });
    }
  }
});

describe('posting into a room needs a write permission (issue 16)', () => {
  it('refuses a credential holding discussions:read alone with 403, and lets discussions:post through', async () => {
    // A fresh session: the matrix above logs the role users out everywhere (DELETE /v1/auth/sessions).
    const owner = { ...users.member, ...(await login(stack, users.member)) };
    const agents = [];
    for (const name of ['rbac-a', 'rbac-b'])
      agents.push((await stack.request('POST', '/v1/agents', { user: owner, body: { name, persona: 'You are terse.' } })).json.id);
    const room = await stack.request('POST', '/v1/discussions', { user: owner, body: { topic: 'Read or write?', agentIds: agents } });
    expect(room.status).toBe(201);
    const post = (authorization: string) =>
      stack.request('POST', `/v1/discussions/${room.json.id}/messages`, { headers: { authorization }, body: { text: 'hello' } });
    const key = async (scopes: Permission[]) =>
      `Bearer ${(await stack.request('POST', '/v1/auth/api-keys', { user: owner, body: { name: 'rbac', scopes } })).json.key}`;
    const readOnly = await post(await key(['discussions:read']));
    expect(readOnly.status).toBe(403);
    expect(readOnly.json.code).toBe('FORBIDDEN');
    expect((await post(await key(['discussions:read', 'discussions:post']))).status).toBe(201);
    const scoped = await stack.api.auth.grants.password({ username: owner.username, password: owner.password, scope: 'discussions:read sessions:self' }, {});
    expect((await post(`Bearer ${scoped.access_token}`)).status).toBe(403);
  });
});
