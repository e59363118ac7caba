/**
 * API keys: shown once, stored hashed, usable as a Bearer credential, scoped
 * to permissions (or a role's permissions), optionally expiring, revocable,
 * and audited on creation and revocation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { pingJob } from './helpers.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

async function createKey(body: Record<string, unknown>, owner = user) {
  const r = await stack.request('POST', '/v1/auth/api-keys', { user: owner, body: { name: 'test key', ...body } });
  return r;
}
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
/** The secret part of `pk_<32 hex>_<43 base64url>`: everything after the second underscore (base64url has underscores of its own). */
const secretOf = (key: string): string => key.slice(36);

describe('creating a key', () => {
  it('returns the key once, with 201 and Cache-Control: no-store', async () => {
    const r = await createKey({});
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.json.key).toMatch(/^pk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(r.json.scopes).toContain('jobs:submit');
  });

  it('never shows the key again in the listing', async () => {
    const r = await createKey({ name: 'listed' });
    const list = await stack.request('GET', '/v1/auth/api-keys', { user });
    const item = list.json.items.find((k: { id: string }) => k.id === r.json.id);
    expect(item).toMatchObject({ id: r.json.id, name: 'listed', revokedAt: null });
    expect(item).not.toHaveProperty('key');
    expect(list.text).not.toContain(secretOf(r.json.key));
  });

  it('stores only a hash of the secret', async () => {
    const r = await createKey({});
    const row = await stack.api.db('api_keys').where({ id: r.json.id }).first();
    const secret = secretOf(r.json.key);
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(row.secret_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('records apikey.created in the audit log', async () => {
    const r = await createKey({ scopes: ['jobs:read'] });
    const row = await stack.api.db('audit_events').where({ action: 'apikey.created', target_id: r.json.id }).first();
    expect(row).toMatchObject({ outcome: 'success', actor_id: user.id, target_type: 'api_key' });
    expect(row.details).toMatchObject({ scopes: ['jobs:read'] });
  });

  it('refuses scopes beyond the caller’s role with 403', async () => {
    const r = await createKey({ scopes: ['users:manage'] });
    expect(r.status).toBe(403);
  });

  it('refuses a role above the caller’s with 403', async () => {
    expect((await createKey({ role: 'admin' })).status).toBe(403);
  });

  // Issue 16: Postgres refuses NUL in text and unpaired surrogates in jsonb, which answered 500.
  for (const [label, name] of [
    ['a NUL', 'ci\u0000key'],
    ['a lone surrogate', 'ci \ud800 key'],
  ] as const) {
    it(`refuses a name holding ${label} with 400 naming the field, and stores nothing`, async () => {
      const before = await stack.api.db('api_keys').where({ user_id: user.id }).count({ n: '*' }).first();
      const r = await createKey({ name });
      expect(r.status).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
      expect(r.json.errors).toEqual([expect.objectContaining({ path: 'name' })]);
      expect(await stack.api.db('api_keys').where({ user_id: user.id }).count({ n: '*' }).first()).toEqual(before);
    });
  }

  it('refuses an expiry in the past with 400', async () => {
    const r = await createKey({ expiresAt: new Date(Date.now() - 60_000).toISOString() });
    expect(r.status).toBe(400);
    expect(r.json.errors[0].path).toBe('expiresAt');
  });

  it('takes an expiry with any RFC 3339 offset, +22:22 included, as the same instant in UTC (Postgres refused it: 500)', async () => {
    const r = await createKey({ expiresAt: '3186-08-31T16:10:31+22:22' });
    expect(r.status, r.text).toBe(201);
    expect(r.json.expiresAt).toBe('3186-08-30T17:48:31.000Z');
    const bad = await createKey({ expiresAt: '2031-02-30T00:00:00Z' });
    expect(bad.status, bad.text).toBe(400);
    expect(bad.json.errors[0].path).toBe('expiresAt');
  });
});

describe('the per-user cap on live keys (issue 16)', () => {
  let capped: Stack;
  const cap = 3;
  beforeAll(async () => {
    capped = await startStack({ workers: false, env: { PARLEY_MAX_API_KEYS_PER_USER: String(cap) } });
  });
  afterAll(() => capped?.stop());
  const make = (u: TestUser, name: string) => capped.request('POST', '/v1/auth/api-keys', { user: u, body: { name } });

  it('refuses one key beyond the cap with 422 LIMIT_EXCEEDED, and counts only live keys', async () => {
    const u = await capped.user('member');
    const made = [];
    for (let i = 0; i < cap; i++) made.push(await make(u, `k${i}`));
    expect(made.map((r) => r.status)).toEqual(Array(cap).fill(201));
    const over = await make(u, 'one-too-many');
    expect(over.status).toBe(422);
    expect(over.json.code).toBe('LIMIT_EXCEEDED');
    expect(await capped.api.db('api_keys').where({ user_id: u.id }).count({ n: '*' }).first()).toMatchObject({ n: cap });
    expect((await capped.request('DELETE', `/v1/auth/api-keys/${made[0]!.json.id}`, { user: u })).status).toBe(204);
    expect((await make(u, 'after-revoke')).status).toBe(201);
  });

  it('holds under concurrent creation: exactly the cap succeeds', async () => {
    const u = await capped.user('member');
    const answers = await Promise.all(Array.from({ length: cap + 3 }, (_, i) => make(u, `race-${i}`)));
    expect(answers.filter((r) => r.status === 201)).toHaveLength(cap);
    expect(answers.filter((r) => r.status === 422)).toHaveLength(3);
  });

  it('is per user: another user still gets keys', async () => {
    const a = await capped.user('member');
    const b = await capped.user('member');
    for (let i = 0; i <= cap; i++) await make(a, `a${i}`);
    expect((await make(b, 'b0')).status).toBe(201);
  });
});

describe('a key minting keys (issue 16)', () => {
  const narrow = async (body: Record<string, unknown> = {}) => (await createKey({ scopes: ['apikeys:self', 'jobs:read'], ...body })).json.key as string;
  const mint = (key: string, body: Record<string, unknown>) =>
    stack.request('POST', '/v1/auth/api-keys', { headers: bearer(key), body: { name: 'child', ...body } });

  it('gives a child no more than its own scopes when none are asked', async () => {
    const child = await mint(await narrow(), {});
    expect(child.status).toBe(201);
    expect([...child.json.scopes].sort()).toEqual(['apikeys:self', 'jobs:read']);
    const me = await stack.request('GET', '/v1/auth/me', { headers: bearer(child.json.key) });
    expect(me.status).toBe(403);
    expect((await stack.request('POST', '/v1/jobs', { headers: bearer(child.json.key), body: pingJob })).status).toBe(403);
  });

  it('refuses scopes or a role beyond its own with 403', async () => {
    const key = await narrow();
    expect((await mint(key, { scopes: ['jobs:submit'] })).status).toBe(403);
    expect((await mint(key, { role: 'member' })).status).toBe(403);
    expect((await mint(key, { scopes: ['jobs:read'] })).status).toBe(201);
  });

  it('makes a child of an expiring key expire no later than its parent', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const key = await narrow({ expiresAt });
    const inherited = await mint(key, {});
    expect(inherited.status).toBe(201);
    expect(Date.parse(inherited.json.expiresAt)).toBe(Date.parse(expiresAt));
    expect((await mint(key, { expiresAt: new Date(Date.parse(expiresAt) + 60_000).toISOString() })).status).toBe(403);
    const sooner = await mint(key, { expiresAt: new Date(Date.parse(expiresAt) - 60_000).toISOString() });
    expect(sooner.status).toBe(201);
  });

  it('holds for a session narrowed by an OAuth scope too', async () => {
    const t = await stack.api.auth.grants.password({ username: user.username, password: user.password, scope: 'apikeys:self jobs:read' }, {});
    const child = await stack.request('POST', '/v1/auth/api-keys', { headers: bearer(t.access_token), body: { name: 'from-scoped-session' } });
    expect([...child.json.scopes].sort()).toEqual(['apikeys:self', 'jobs:read']);
  });
});

describe('using a key', () => {
  it('authenticates as its owner when sent as a Bearer credential', async () => {
    const r = await createKey({});
    const me = await stack.request('GET', '/v1/auth/me', { headers: bearer(r.json.key) });
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ id: user.id, authenticatedWith: 'apiKey' });
    expect((await stack.request('POST', '/v1/jobs', { headers: bearer(r.json.key), body: pingJob })).status).toBe(202);
  });

  it('is limited to its scopes: a jobs:read key gets 403 on POST /v1/jobs but may list jobs', async () => {
    const r = await createKey({ scopes: ['jobs:read'] });
    const submit = await stack.request('POST', '/v1/jobs', { headers: bearer(r.json.key), body: pingJob });
    expect(submit.status).toBe(403);
    expect(submit.json.code).toBe('FORBIDDEN');
    expect((await stack.request('GET', '/v1/jobs', { headers: bearer(r.json.key) })).status).toBe(200);
  });

  it("is limited to a role's permissions when scoped to a role", async () => {
    const r = await createKey({ role: 'viewer' });
    expect((await stack.request('POST', '/v1/jobs', { headers: bearer(r.json.key), body: pingJob })).status).toBe(403);
    expect((await stack.request('GET', '/v1/jobs', { headers: bearer(r.json.key) })).status).toBe(200);
  });

  it('is refused with 401 once it has expired', async () => {
    const r = await createKey({ expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect((await stack.request('GET', '/v1/auth/me', { headers: bearer(r.json.key) })).status).toBe(200);
    // Its expiry, moved into the past where it is kept (every request reads the key's row).
    await stack.api
      .db('api_keys')
      .where({ id: r.json.id })
      .update({ expires_at: stack.api.db.raw("now() - interval '1 second'") });
    const after = await stack.request('GET', '/v1/auth/me', { headers: bearer(r.json.key) });
    expect(after.status).toBe(401);
    expect(after.json.detail).toBe('API key expired');
  });

  it('is refused with 401 when its secret is wrong', async () => {
    const r = await createKey({});
    const forged = `${r.json.key.slice(0, -4)}AAAA`;
    expect((await stack.request('GET', '/v1/auth/me', { headers: bearer(forged) })).status).toBe(401);
  });

  it('follows a demotion of its owner: permissions are the scopes narrowed by the current role', async () => {
    const owner = await stack.user('operator');
    const admin = await stack.user('admin');
    const r = await createKey({ scopes: ['jobs:read', 'jobs:any', 'sessions:self'] }, owner);
    await stack.request('PATCH', `/v1/admin/users/${owner.id}`, { user: admin, body: { role: 'member' } });
    const me = await stack.request('GET', '/v1/auth/me', { headers: bearer(r.json.key) });
    expect(me.json.permissions.sort()).toEqual(['jobs:read', 'sessions:self']);
  });
});

describe('revoking a key', () => {
  it('makes the key fail with 401', async () => {
    const r = await createKey({});
    expect((await stack.request('DELETE', `/v1/auth/api-keys/${r.json.id}`, { user })).status).toBe(204);
    const after = await stack.request('GET', '/v1/auth/me', { headers: bearer(r.json.key) });
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
  });

  it('records apikey.revoked in the audit log', async () => {
    const r = await createKey({});
    await stack.request('DELETE', `/v1/auth/api-keys/${r.json.id}`, { user });
    const row = await stack.api.db('audit_events').where({ action: 'apikey.revoked', target_id: r.json.id }).first();
    expect(row).toMatchObject({ outcome: 'success', actor_id: user.id, target_type: 'api_key' });
  });

  it("answers 404 to an admin's key without users:manage revoking another user's key, which keeps working", async () => {
    const admin = await stack.user('admin');
    const adminKey = (await createKey({ scopes: ['apikeys:self'] }, admin)).json.key as string;
    const r = await createKey({});
    expect((await stack.request('DELETE', `/v1/auth/api-keys/${r.json.id}`, { headers: bearer(adminKey) })).status).toBe(404);
    expect((await stack.request('GET', '/v1/auth/me', { headers: bearer(r.json.key) })).status).toBe(200);
  });

  it("answers 404 for another member's key, which keeps working", async () => {
    const other = await stack.user('member');
    const r = await createKey({}, other);
    expect((await stack.request('DELETE', `/v1/auth/api-keys/${r.json.id}`, { user })).status).toBe(404);
    expect((await stack.request('GET', '/v1/auth/me', { headers: bearer(r.json.key) })).status).toBe(200);
  });
});
