/**
 * POST /v1/auth/token against RFC 6749 (§3.2, §4.3, §5.1, §5.2, §6), refresh
 * rotation and reuse detection, logout and session revocation. Rate limits are
 * raised for this stack: they have their own suite.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { passwordHashCount } from '../../api/auth/passwords.ts';
import { responseValidator } from '../support/openapi-fuzz.ts';
import { claimsOf, login, rawRequest, stableProblem, tokenRequest, uniqueName, type HttpResult } from './helpers.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false, env: { PARLEY_RATE_TOKEN_PER_IP: '100000', PARLEY_RATE_TOKEN_PER_USERNAME: '100000' } });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

const me = (token: string) => stack.request('GET', '/v1/auth/me', { headers: { authorization: `Bearer ${token}` } });

function expectNoStore(res: HttpResult) {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
}

/** RFC 6749 §5.2: application/json (not problem+json) with `error` and `error_description`; `code` and `requestId` are ours. */
function expectOAuthError(res: HttpResult, error: string, status = 400) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.json.error).toBe(error);
  expect(typeof res.json.error_description).toBe('string');
  expect(typeof res.json.code).toBe('string');
  expect(res.json).not.toHaveProperty('type');
  expectNoStore(res);
}

describe('password grant', () => {
  it('answers 200 with access_token, token_type Bearer, expires_in, refresh_token and scope, not to be stored', async () => {
    const res = await tokenRequest(stack, { grant_type: 'password', username: user.username, password: user.password });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expectNoStore(res);
    expect(Object.keys(res.json).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
    expect(res.json.token_type).toBe('Bearer');
    expect(res.json.expires_in).toBe(stack.api.config.auth.accessTtlSeconds);
    expect(res.json.scope.split(' ')).toContain('jobs:submit');
    expect((await me(res.json.access_token)).json.username).toBe(user.username);
  });

  it('finds the user whatever the case of the username', async () => {
    const res = await tokenRequest(stack, { grant_type: 'password', username: user.username.toUpperCase(), password: user.password });
    expect(res.status).toBe(200);
  });

  it('narrows the token to a requested scope', async () => {
    const res = await tokenRequest(stack, { grant_type: 'password', username: user.username, password: user.password, scope: 'jobs:read sessions:self' });
    expect(res.status).toBe(200);
    expect(res.json.scope).toBe('jobs:read sessions:self');
    expect((await me(res.json.access_token)).json.permissions.sort()).toEqual(['jobs:read', 'sessions:self']);
    const submit = await stack.request('POST', '/v1/jobs', {
      headers: { authorization: `Bearer ${res.json.access_token}` },
      body: { kind: 'system.ping', input: {} },
    });
    expect(submit.status).toBe(403);
  });

  it('refuses a scope beyond the role with invalid_scope', async () => {
    expectOAuthError(
      await tokenRequest(stack, { grant_type: 'password', username: user.username, password: user.password, scope: 'users:manage' }),
      'invalid_scope',
    );
  });

  it('gives a wrong password and an unknown user byte-identical bodies apart from the request id', async () => {
    const wrong = await tokenRequest(stack, { grant_type: 'password', username: user.username, password: 'not-the-password' });
    const unknown = await tokenRequest(stack, { grant_type: 'password', username: uniqueName('nobody'), password: 'not-the-password' });
    expectOAuthError(wrong, 'invalid_grant');
    expectOAuthError(unknown, 'invalid_grant');
    expect(JSON.stringify(stableProblem(unknown.json))).toBe(JSON.stringify(stableProblem(wrong.json)));
    expect(unknown.text.replace(unknown.json.requestId, '')).toBe(wrong.text.replace(wrong.json.requestId, ''));
  });

  it('pays one argon2 verification for an unknown user, as for a wrong password (no timing oracle)', async () => {
    const cost = async (username: string) => {
      const before = passwordHashCount();
      const r = await tokenRequest(stack, { grant_type: 'password', username, password: 'not-the-password' });
      expectOAuthError(r, 'invalid_grant');
      return passwordHashCount() - before;
    };
    expect(await cost(user.username)).toBe(1);
    expect(await cost(uniqueName('nobody'))).toBe(1);
  });

  it('refuses a disabled account exactly like a wrong password', async () => {
    const u = await stack.user('member');
    await stack.api.db('users').where({ id: u.id }).update({ disabled: true });
    const res = await tokenRequest(stack, { grant_type: 'password', username: u.username, password: u.password });
    expectOAuthError(res, 'invalid_grant');
    expect(res.json.error_description).toBe('The username or password is incorrect');
  });
});

describe('malformed token requests', () => {
  it('accepts only application/x-www-form-urlencoded: the same parameters as JSON are invalid_request', async () => {
    const res = await rawRequest(stack, 'POST', '/v1/auth/token', {
      body: JSON.stringify({ grant_type: 'password', username: user.username, password: user.password }),
      headers: { 'content-type': 'application/json' },
    });
    expectOAuthError(res, 'invalid_request');
  });

  it('answers a bad Authorization header in the §5.2 shape too: 401 invalid_client with WWW-Authenticate', async () => {
    const res = await tokenRequest(
      stack,
      { grant_type: 'password', username: user.username, password: user.password },
      { headers: { authorization: 'Bearer not.a.token' } },
    );
    expectOAuthError(res, 'invalid_client', 401);
    expect(res.json.code).toBe('UNAUTHENTICATED');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('takes HTTP Basic client credentials (§2.3.1), as OAuth2 libraries send them by default', async () => {
    const basic = (idAndSecret: string) => ({ authorization: `Basic ${Buffer.from(idAndSecret).toString('base64')}` });
    const form = { grant_type: 'password', username: user.username, password: user.password };
    for (const credentials of ['parley-cli:', 'parley-cli:anything', 'my%20app:s%3Ecret'])
      expect((await tokenRequest(stack, form, { headers: basic(credentials) })).status, credentials).toBe(200);
    const refreshed = await tokenRequest(
      stack,
      { grant_type: 'refresh_token', refresh_token: (await tokenRequest(stack, form)).json.refresh_token },
      { headers: basic('parley-cli:') },
    );
    expect(refreshed.status).toBe(200);
    // A malformed Basic header: invalid_client, answered in the scheme the client used (§5.2).
    for (const authorization of ['Basic', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`]) {
      const res = await tokenRequest(stack, form, { headers: { authorization } });
      expectOAuthError(res, 'invalid_client', 401);
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="parley"/);
    }
    // §2.3: one method per request.
    const both = await tokenRequest(stack, { ...form, client_id: 'parley-cli' }, { headers: basic('parley-cli:') });
    expectOAuthError(both, 'invalid_request');
  });

  it('names the field when a parameter holds text that cannot be stored', async () => {
    const res = await tokenRequest(stack, { grant_type: 'password', username: 'nul\u0000name', password: 'whatever-it-is' });
    expectOAuthError(res, 'invalid_request');
    expect(res.json.error_description).toContain('username');
  });

  it('answers invalid_request when grant_type is missing', async () => {
    expectOAuthError(await tokenRequest(stack, { username: user.username, password: user.password }), 'invalid_request');
  });

  it('answers invalid_request when the password is missing', async () => {
    expectOAuthError(await tokenRequest(stack, { grant_type: 'password', username: user.username }), 'invalid_request');
  });

  it('answers invalid_request when the username is missing', async () => {
    expectOAuthError(await tokenRequest(stack, { grant_type: 'password', password: 'whatever-it-is' }), 'invalid_request');
  });

  it('answers invalid_request when refresh_token is missing from a refresh grant', async () => {
    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token' }), 'invalid_request');
  });

  it('answers invalid_request when a parameter is repeated', async () => {
    const body = `grant_type=password&username=${encodeURIComponent(user.username)}&password=a&password=${encodeURIComponent(user.password)}`;
    const res = await rawRequest(stack, 'POST', '/v1/auth/token', { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expectOAuthError(res, 'invalid_request');
    expect(res.json.error_description).toContain('password');
  });

  it('answers unsupported_grant_type for a grant it does not serve', async () => {
    expectOAuthError(await tokenRequest(stack, { grant_type: 'client_credentials' }), 'unsupported_grant_type');
  });

  it('answers invalid_grant for a refresh token it never issued', async () => {
    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: `${randomUUID()}.forged` }), 'invalid_grant');
  });
});

describe('refresh rotation', () => {
  it('a refresh token yields new tokens and a new refresh token, which works in turn', async () => {
    const s = await login(stack, user);
    const first = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken });
    expect(first.status).toBe(200);
    expectNoStore(first);
    expect(first.json.token_type).toBe('Bearer');
    expect(first.json.refresh_token).not.toBe(s.refreshToken);
    expect(claimsOf(first.json.access_token).sid).toBe(claimsOf(s.token).sid);
    expect((await me(first.json.access_token)).status).toBe(200);
    const second = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token });
    expect(second.status).toBe(200);
  });

  it('refuses a refresh scope beyond the grant with invalid_scope and leaves the token unspent (§6)', async () => {
    const narrow = await tokenRequest(stack, { grant_type: 'password', username: user.username, password: user.password, scope: 'jobs:read sessions:self' });
    expect(narrow.status).toBe(200);
    const wider = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: narrow.json.refresh_token, scope: 'jobs:read jobs:submit' });
    expectOAuthError(wider, 'invalid_scope');
    expect(wider.json.error_description).toContain('jobs:submit');
    // The same token still works; a scope within the grant is taken, and the answer states the session's scope.
    const within = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: narrow.json.refresh_token, scope: 'jobs:read' });
    expect(within.status).toBe(200);
    expect(within.json.scope).toBe('jobs:read sessions:self');
  });

  it('a rotated-out refresh token no longer works', async () => {
    const s = await login(stack, user);
    expect((await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken })).status).toBe(200);
    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken }), 'invalid_grant');
  });

  it('reusing a rotated refresh token revokes the session: the newest refresh token and the access token stop working', async () => {
    const s = await login(stack, user);
    const rotated = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken });
    expect((await me(rotated.json.access_token)).status).toBe(200);

    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken }), 'invalid_grant');

    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: rotated.json.refresh_token }), 'invalid_grant');
    expect((await me(rotated.json.access_token)).status).toBe(401);
    expect((await me(s.token)).status).toBe(401);
  });

  it('records refresh-token reuse in the audit log against the session', async () => {
    const s = await login(stack, user);
    const sid = claimsOf(s.token).sid;
    await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken });
    await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken });
    const rows = await stack.api.db('audit_events').where({ action: 'auth.refresh_reuse', target_id: sid });
    expect(rows).toHaveLength(1);
    // Regression: the row named the actor's id but not its name.
    expect(rows[0]).toMatchObject({ outcome: 'denied', actor_id: user.id, actor_name: user.username, target_type: 'session' });
  });

  it('names the actor on a refused refresh of a revoked session', async () => {
    const s = await login(stack, user);
    const sid = claimsOf(s.token).sid;
    expect((await stack.request('POST', '/v1/auth/logout', { headers: s.auth })).status).toBe(204);
    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken }), 'invalid_grant');
    const row = await stack.api.db('audit_events').where({ action: 'auth.refresh', outcome: 'failure', target_id: sid }).first();
    expect(row).toMatchObject({ actor_id: user.id, actor_name: user.username, details: { reason: 'revoked' } });
  });

  it('leaves the user’s other sessions alone when one session is revoked for reuse', async () => {
    const victim = await login(stack, user);
    const other = await login(stack, user);
    await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: victim.refreshToken });
    await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: victim.refreshToken });
    expect((await me(other.token)).status).toBe(200);
  });
});

describe('logout and sessions', () => {
  it('logout makes the same access token fail with 401 at its next request', async () => {
    const s = await login(stack, user);
    expect((await me(s.token)).status).toBe(200);
    const out = await stack.request('POST', '/v1/auth/logout', { headers: s.auth });
    expect(out.status).toBe(204);
    const after = await me(s.token);
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
  });

  it('logout also kills the session’s refresh token', async () => {
    const s = await login(stack, user);
    await stack.request('POST', '/v1/auth/logout', { headers: s.auth });
    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken }), 'invalid_grant');
  });

  it('lists the user’s own active sessions and marks the current one', async () => {
    const u = await stack.user('viewer');
    const second = await login(stack, u);
    const res = await stack.request('GET', '/v1/auth/sessions', { headers: second.auth });
    expect(res.status).toBe(200);
    expect(res.json.items).toHaveLength(2);
    expect(res.json.items.filter((s: { current: boolean }) => s.current).map((s: { id: string }) => s.id)).toEqual([claimsOf(second.token).sid]);
  });

  it('revokes one of the user’s sessions by id: its token stops working, the caller’s does not', async () => {
    const s1 = await login(stack, user);
    const s2 = await login(stack, user);
    const del = await stack.request('DELETE', `/v1/auth/sessions/${claimsOf(s1.token).sid}`, { headers: s2.auth });
    expect(del.status).toBe(204);
    expect((await me(s1.token)).status).toBe(401);
    expect((await me(s2.token)).status).toBe(200);
  });

  it('answers 404 for revoking another user’s session, which keeps working', async () => {
    const other = await stack.user('member');
    const mine = await login(stack, user);
    const del = await stack.request('DELETE', `/v1/auth/sessions/${claimsOf(other.token).sid}`, { headers: mine.auth });
    expect(del.status).toBe(404);
    expect((await me(other.token)).status).toBe(200);
  });

  // Regression: logout and DELETE /v1/auth/sessions/:id needed sessions:self, so a session signed in with a
  // narrower scope could not end itself (403) and its refresh token kept working for its whole lifetime.
  const narrowSession = async (scope: string) => {
    const t = await tokenRequest(stack, { grant_type: 'password', username: user.username, password: user.password, scope });
    expect(t.status).toBe(200);
    return { token: t.json.access_token as string, refreshToken: t.json.refresh_token as string, auth: { authorization: `Bearer ${t.json.access_token}` } };
  };

  it('a session narrowed by scope (without sessions:self) can log itself out, refresh token included', async () => {
    const s = await narrowSession('jobs:read');
    expect((await stack.request('POST', '/v1/auth/logout', { headers: s.auth })).status).toBe(204);
    expect((await stack.request('GET', '/v1/jobs', { headers: s.auth })).status).toBe(401);
    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken }), 'invalid_grant');
  });

  it('a session narrowed by scope can revoke itself by id, but not another session of the account', async () => {
    const s = await narrowSession('jobs:read');
    const other = await login(stack, user);
    const denied = await stack.request('DELETE', `/v1/auth/sessions/${claimsOf(other.token).sid}`, { headers: s.auth });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('www-authenticate')).toMatch(/insufficient_scope.*sessions:self/);
    expect((await me(other.token)).status).toBe(200);
    expect((await stack.request('DELETE', `/v1/auth/sessions/${claimsOf(s.token).sid}`, { headers: s.auth })).status).toBe(204);
    expectOAuthError(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: s.refreshToken }), 'invalid_grant');
  });

  it('logout with an API key is 409 INVALID_STATE (a key has no session)', async () => {
    const s = await login(stack, user);
    const key = await stack.request('POST', '/v1/auth/api-keys', { headers: s.auth, body: { name: 'logout-probe', scopes: ['jobs:read'] } });
    expect(key.status).toBe(201);
    const out = await stack.request('POST', '/v1/auth/logout', { headers: { authorization: `Bearer ${key.json.key}` } });
    expect(out.status).toBe(409);
    expect(out.json.code).toBe('INVALID_STATE');
    // Regression: the 409 was not in the OpenAPI document.
    const validate = responseValidator((await stack.request('GET', '/openapi.json')).json);
    expect(validate('POST', '/v1/auth/logout', out.status, out.headers.get('content-type'), out.text)).toEqual([]);
  });

  it('DELETE /v1/auth/sessions logs the user out everywhere', async () => {
    const u = await stack.user('member');
    const second = await login(stack, u);
    const res = await stack.request('DELETE', '/v1/auth/sessions', { headers: second.auth });
    expect(res.status).toBe(200);
    expect(res.json.revoked).toBe(2);
    expect((await me(u.token)).status).toBe(401);
    expect((await me(second.token)).status).toBe(401);
  });

  it('disabling an account ends its sessions at once', async () => {
    const admin = await stack.user('admin');
    const u = await stack.user('member');
    const res = await stack.request('PATCH', `/v1/admin/users/${u.id}`, { user: admin, body: { disabled: true } });
    expect(res.status).toBe(200);
    expect((await me(u.token)).status).toBe(401);
  });

  it('a role change applies to live sessions at their next request', async () => {
    const admin = await stack.user('admin');
    const u = await stack.user('viewer');
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: {} } })).status).toBe(403);
    await stack.request('PATCH', `/v1/admin/users/${u.id}`, { user: admin, body: { role: 'member' } });
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: {} } })).status).toBe(202);
    const audit = await stack.api.db('audit_events').where({ action: 'user.role_changed', target_id: u.id }).first();
    expect(audit.details).toEqual({ from: 'viewer', to: 'member' });
  });
});

describe('GET /v1/auth/me', () => {
  it('describes the caller: id, username, role, permissions and credential kind', async () => {
    const res = await me(user.token);
    expect(res.json).toMatchObject({ id: user.id, username: user.username, role: 'member', authenticatedWith: 'user' });
    expect(res.json.permissions).toContain('jobs:submit');
    expect(res.json.permissions).not.toContain('jobs:any');
  });
});
