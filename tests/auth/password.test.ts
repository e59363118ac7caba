/**
 * Passwords after sign-up (issue 16): `POST /v1/auth/password` changes your
 * own (given the current one) and revokes your other sessions; an admin's
 * `POST /v1/admin/users/:id/password` and `npm run user -- reset-password`
 * set someone's and revoke all of theirs. Every change is audited; wrong
 * current passwords spend the account's failed-login budget (shared with the
 * token endpoint) before any hashing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordHashCount, verifyPassword } from '../../api/auth/passwords.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { responseValidator } from '../support/openapi-fuzz.ts';
import { login, runScript, tokenRequest } from './helpers.ts';

let stack: Stack;
const perUser = 3;

beforeAll(async () => {
  stack = await startStack({ workers: false, env: { PARLEY_RATE_TOKEN_PER_IP: '100000', PARLEY_RATE_TOKEN_PER_USERNAME: String(perUser) } });
});
afterAll(() => stack?.stop());

const me = (authorization: string) => stack.request('GET', '/v1/auth/me', { headers: { authorization } });
const change = (u: { auth: { authorization: string } }, body: Record<string, unknown>) => stack.request('POST', '/v1/auth/password', { headers: u.auth, body });
const canLogIn = async (u: TestUser, password: string) =>
  (await tokenRequest(stack, { grant_type: 'password', username: u.username, password })).status === 200;

describe('POST /v1/auth/password', () => {
  it('changes the password; this session keeps working, the others are revoked; audited', async () => {
    const u = await stack.user('member');
    const other = await login(stack, u);
    const newPassword = `new-${randomUUID()}`;
    const r = await change(u, { currentPassword: u.password, newPassword });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ sessionsRevoked: 1 });
    expect((await me(u.auth.authorization)).status).toBe(200);
    expect((await me(other.auth.authorization)).status).toBe(401);
    expect(await canLogIn(u, u.password)).toBe(false);
    expect(await canLogIn(u, newPassword)).toBe(true);
    const row = await stack.api.db('audit_events').where({ action: 'user.password_changed', target_id: u.id, outcome: 'success' }).first();
    expect(row).toMatchObject({ actor_id: u.id, details: { sessionsRevoked: 1 } });
  });

  it('refuses a wrong current password with 400 naming currentPassword, changes nothing, audits the failure', async () => {
    const u = await stack.user('member');
    const r = await change(u, { currentPassword: 'not-the-password', newPassword: `new-${randomUUID()}` });
    expect(r.status).toBe(400);
    expect(r.json.errors).toEqual([expect.objectContaining({ path: 'currentPassword' })]);
    expect(await canLogIn(u, u.password)).toBe(true);
    expect(await stack.api.db('audit_events').where({ action: 'user.password_changed', target_id: u.id, outcome: 'failure' })).toHaveLength(1);
  });

  it('lets one of several changes made at once with the same current password win; the others are refused', async () => {
    // Each change verified the current password, then wrote its own: all four answered 200 and only the last
    // one's password held. Now the write is a compare-and-set on the password verified.
    const u = await stack.user('member');
    const fresh = [0, 1, 2, 3].map(() => `new-${randomUUID()}`);
    const answers = await Promise.all(fresh.map((newPassword) => change(u, { currentPassword: u.password, newPassword })));
    const won = answers.flatMap((a, i) => (a.status === 200 ? [i] : []));
    expect(won).toHaveLength(1);
    // Every answer, the 409 included (it was missing), is one the OpenAPI document declares.
    const validate = responseValidator((await stack.request('GET', '/openapi.json')).json);
    for (const a of answers) expect(validate('POST', '/v1/auth/password', a.status, a.headers.get('content-type'), a.text)).toEqual([]);
    for (const a of answers.filter((x) => x.status !== 200)) {
      // Refused at the write (409), at the check when the winner had committed before it read (400), or by the
      // per-user limit on password attempts, which this file sets low (429).
      expect([400, 409, 429]).toContain(a.status);
      expect(a.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    // Read from the row, not by logging in: the losers' 400s spent the account's failed-login budget.
    const { password_hash: hash } = await stack.api.db('users').where({ id: u.id }).first();
    expect(await verifyPassword(hash, fresh[won[0]!]!)).toBe(true);
    expect(await verifyPassword(hash, fresh[(won[0]! + 1) % 4]!)).toBe(false);
  });

  it('refuses a short new password with 400 naming newPassword', async () => {
    const u = await stack.user('member');
    const r = await change(u, { currentPassword: u.password, newPassword: 'short' });
    expect(r.status).toBe(400);
    expect(r.json.errors.map((e: { path: string }) => e.path)).toEqual(['newPassword']);
  });

  it('refuses an API key with 403: a password change needs a session', async () => {
    const u = await stack.user('member');
    const key = await stack.request('POST', '/v1/auth/api-keys', { user: u, body: { name: 'k' } });
    const r = await change({ auth: { authorization: `Bearer ${key.json.key}` } }, { currentPassword: u.password, newPassword: `new-${randomUUID()}` });
    expect(r.status).toBe(403);
    expect(await canLogIn(u, u.password)).toBe(true);
  });

  it('limits wrong current passwords per user with 429 before hashing', async () => {
    const u = await stack.user('member');
    for (let i = 0; i < perUser; i++) expect((await change(u, { currentPassword: `wrong-${i}`, newPassword: `new-${randomUUID()}` })).status).toBe(400);
    const hashes = passwordHashCount();
    const limited = await change(u, { currentPassword: u.password, newPassword: `new-${randomUUID()}` });
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe('RATE_LIMITED');
    expect(passwordHashCount()).toBe(hashes);
    // The budget is the account's failed-login budget: the token endpoint refuses now too, even the right password.
    const login = await tokenRequest(stack, { grant_type: 'password', username: u.username, password: u.password });
    expect(login.status).toBe(429);
    expect(passwordHashCount()).toBe(hashes);
  });

  // Regression: failed logins and wrong current passwords had separate buckets, so a stolen access token got
  // twice the documented guesses per window (6 wrong logins, then 5 more wrong current passwords before a 429).
  it('shares the failed-login budget: wrong logins first leave no wrong current password to try, 429 with Retry-After', async () => {
    const u = await stack.user('member');
    for (let i = 0; i < perUser; i++)
      expect((await tokenRequest(stack, { grant_type: 'password', username: u.username.toUpperCase(), password: `wrong-${i}` })).status).toBe(400);
    const hashes = passwordHashCount();
    const limited = await change(u, { currentPassword: `wrong-${perUser}`, newPassword: `new-${randomUUID()}` });
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(passwordHashCount()).toBe(hashes);
  });

  it('shares the failed-login budget: wrong current passwords and wrong logins together reach the limit', async () => {
    const u = await stack.user('member');
    expect((await change(u, { currentPassword: 'wrong-0', newPassword: `new-${randomUUID()}` })).status).toBe(400);
    for (let i = 1; i < perUser; i++)
      expect((await tokenRequest(stack, { grant_type: 'password', username: u.username, password: `wrong-${i}` })).status).toBe(400);
    expect((await change(u, { currentPassword: 'wrong-again', newPassword: `new-${randomUUID()}` })).status).toBe(429);
    expect((await tokenRequest(stack, { grant_type: 'password', username: u.username, password: u.password })).status).toBe(429);
  });
});

describe('POST /v1/admin/users/:id/password', () => {
  it('sets the password and revokes every session of the account; audited with the admin', async () => {
    const admin = await stack.user('admin');
    const u = await stack.user('member');
    const password = `reset-${randomUUID()}`;
    const r = await stack.request('POST', `/v1/admin/users/${u.id}/password`, { user: admin, body: { password } });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ sessionsRevoked: 1 });
    expect((await me(u.auth.authorization)).status).toBe(401);
    expect(await canLogIn(u, u.password)).toBe(false);
    expect(await canLogIn(u, password)).toBe(true);
    const row = await stack.api.db('audit_events').where({ action: 'user.password_reset', target_id: u.id }).first();
    expect(row).toMatchObject({ actor_id: admin.id, outcome: 'success' });
  });

  it('answers 404 for an unknown user and 403 to a member', async () => {
    const admin = await stack.user('admin');
    const member = await stack.user('member');
    const body = { password: `reset-${randomUUID()}` };
    expect((await stack.request('POST', `/v1/admin/users/${randomUUID()}/password`, { user: admin, body })).status).toBe(404);
    expect((await stack.request('POST', `/v1/admin/users/${admin.id}/password`, { user: member, body })).status).toBe(403);
  });
});

describe('npm run user -- reset-password', () => {
  it('sets the password from PARLEY_NEW_USER_PASSWORD, revokes the sessions, and audits it from the CLI', async () => {
    const u = await stack.user('member');
    const password = `cli-${randomUUID()}`;
    const r = await runScript(stack, 'scripts/user.ts', ['reset-password', u.username], { env: { PARLEY_NEW_USER_PASSWORD: password } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: u.id, username: u.username, sessionsRevoked: 1 });
    expect((await me(u.auth.authorization)).status).toBe(401);
    expect(await canLogIn(u, password)).toBe(true);
    const row = await stack.api.db('audit_events').where({ action: 'user.password_reset', target_id: u.id }).first();
    expect(row).toMatchObject({ user_agent: 'cli', actor_id: null });
  });

  it('refuses an unknown user with exit code 1', async () => {
    const r = await runScript(stack, 'scripts/user.ts', ['reset-password', `nobody-${randomUUID().slice(0, 8)}`], {
      env: { PARLEY_NEW_USER_PASSWORD: `pw-${randomUUID()}` },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/No such user/);
  });
});
