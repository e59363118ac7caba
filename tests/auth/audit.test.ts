/**
 * The audit log: rows carry actor, IP, user agent, target and outcome;
 * GET /v1/admin/audit is for admins, filters and pages with `before`; and the
 * table is append-only, enforced by Postgres itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { login, tokenRequest, uniqueName } from './helpers.ts';

let stack: Stack;
let admin: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false, env: { PARLEY_RATE_TOKEN_PER_IP: '100000' } });
  admin = await stack.user('admin');
});
afterAll(() => stack?.stop());

const audit = (query: string, user = admin) => stack.request('GET', `/v1/admin/audit?${query}`, { user });

describe('what is recorded', () => {
  it('records a failed login with the attempted name, IP, user agent and outcome', async () => {
    const name = uniqueName('nobody');
    await tokenRequest(stack, { grant_type: 'password', username: name, password: 'x' }, { headers: { 'user-agent': 'audit-test/1' } });
    const row = await stack.api.db('audit_events').where({ action: 'auth.login', actor_name: name }).first();
    expect(row).toMatchObject({ outcome: 'failure', actor_id: null, user_agent: 'audit-test/1' });
    expect(row.ip).toMatch(/127\.0\.0\.1/);
  });

  it('records a successful login with the user and the new session as target', async () => {
    const u = await stack.user('member');
    const row = await stack.api.db('audit_events').where({ action: 'auth.login', actor_id: u.id, outcome: 'success' }).first();
    expect(row).toMatchObject({ actor_name: u.username, target_type: 'session' });
  });

  it('records logouts', async () => {
    const u = await stack.user('member');
    await stack.request('POST', '/v1/auth/logout', { user: u });
    expect(await stack.api.db('audit_events').where({ action: 'auth.logout', actor_id: u.id })).toHaveLength(1);
  });

  it('records refreshes', async () => {
    const u = await stack.user('member');
    await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: u.refreshToken });
    expect(await stack.api.db('audit_events').where({ action: 'auth.refresh', actor_id: u.id, outcome: 'success' })).toHaveLength(1);
  });

  it('records user creation by an admin', async () => {
    const r = await stack.request('POST', '/v1/admin/users', { user: admin, body: { username: uniqueName('made'), password: 'a-long-enough-password', role: 'viewer' } });
    const row = await stack.api.db('audit_events').where({ action: 'user.created', target_id: r.json.id }).first();
    expect(row).toMatchObject({ actor_id: admin.id, outcome: 'success', target_type: 'user' });
  });
});

describe('GET /v1/admin/audit', () => {
  it('is refused to operators with 403', async () => {
    const op = await stack.user('operator');
    expect((await audit('limit=1', op)).status).toBe(403);
  });

  it('filters by action', async () => {
    const u = await stack.user('member');
    await stack.request('POST', '/v1/auth/logout', { user: u });
    const r = await audit('action=auth.logout&limit=500');
    expect(r.status).toBe(200);
    expect(r.json.items.length).toBeGreaterThan(0);
    expect(r.json.items.every((e: { action: string }) => e.action === 'auth.logout')).toBe(true);
    expect(r.json.items.some((e: { actorId: string }) => e.actorId === u.id)).toBe(true);
  });

  it('filters by actor and outcome', async () => {
    const u = await stack.user('member');
    await login(stack, u);
    const r = await audit(`actorId=${u.id}&outcome=success`);
    expect(r.json.items.length).toBe(2);
    expect(r.json.items.every((e: { actorId: string; outcome: string }) => e.actorId === u.id && e.outcome === 'success')).toBe(true);
  });

  it('pages newest first with before, without overlap or gaps', async () => {
    const u = await stack.user('member');
    for (let i = 0; i < 4; i++) await login(stack, u);
    const all = (await audit(`actorId=${u.id}&limit=100`)).json.items.map((e: { id: number }) => e.id);
    expect(all).toHaveLength(5);
    const first = await audit(`actorId=${u.id}&limit=2`);
    const second = await audit(`actorId=${u.id}&limit=2&before=${first.json.nextBefore}`);
    const third = await audit(`actorId=${u.id}&limit=2&before=${second.json.nextBefore}`);
    const paged = [...first.json.items, ...second.json.items, ...third.json.items].map((e: { id: number }) => e.id);
    expect(paged).toEqual(all);
    expect([...all].sort((a, b) => b - a)).toEqual(all);
    expect(third.json.nextBefore).toBeNull();
  });

  it('returns each event with actor, IP, user agent, target and outcome', async () => {
    const r = await audit('action=auth.login&outcome=success&limit=1');
    expect(Object.keys(r.json.items[0]).sort()).toEqual(['action', 'actorId', 'actorName', 'at', 'details', 'id', 'ip', 'outcome', 'targetId', 'targetType', 'userAgent']);
  });

  it('rejects an invalid filter with 400', async () => {
    expect((await audit('outcome=maybe')).status).toBe(400);
  });
});

describe('append-only', () => {
  it('refuses an UPDATE of an audit row', async () => {
    const row = await stack.api.db('audit_events').orderBy('id', 'desc').first();
    await expect(stack.api.db('audit_events').where({ id: row.id }).update({ outcome: 'success', actor_name: 'someone else' })).rejects.toThrow(/append-only/);
  });

  it('refuses a DELETE of an audit row', async () => {
    const row = await stack.api.db('audit_events').orderBy('id', 'desc').first();
    await expect(stack.api.db('audit_events').where({ id: row.id }).delete()).rejects.toThrow(/append-only/);
    expect(await stack.api.db('audit_events').where({ id: row.id }).first()).toBeTruthy();
  });

  it('refuses a TRUNCATE of the audit table', async () => {
    // Inside a transaction that is always rolled back, so a broken trigger cannot wipe the shared log.
    let outcome = 'truncated';
    await stack.api.db
      .transaction(async (tx) => {
        await tx.raw('truncate audit_events').catch((err: Error) => {
          outcome = err.message;
        });
        throw new Error('rollback');
      })
      .catch(() => {});
    expect(outcome).toMatch(/append-only/);
  });
});
