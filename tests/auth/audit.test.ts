/**
 * The audit log: rows carry actor, IP, user agent, target and outcome;
 * GET /v1/admin/audit is for admins, filters and pages with `before`; and the
 * table is append-only, enforced by Postgres itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { freshLoopback, login, rawRequest, tokenRequest, uniqueName } from './helpers.ts';

let stack: Stack;
let admin: TestUser;
const maxKeys = 4;

beforeAll(async () => {
  // Denials aggregate in windows closed by hand here (flush), at most `maxKeys` keys each.
  stack = await startStack({
    workers: false,
    env: { PARLEY_RATE_TOKEN_PER_IP: '100000', PARLEY_AUDIT_DENIAL_WINDOW_S: '3600', PARLEY_AUDIT_DENIAL_MAX_KEYS: String(maxKeys) },
  });
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
    const r = await stack.request('POST', '/v1/admin/users', {
      user: admin,
      body: { username: uniqueName('made'), password: 'a-long-enough-password', role: 'viewer' },
    });
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
    expect(Object.keys(r.json.items[0]).sort()).toEqual([
      'action',
      'actorId',
      'actorName',
      'at',
      'details',
      'id',
      'ip',
      'outcome',
      'targetId',
      'targetType',
      'userAgent',
    ]);
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

describe('denials as audit events (issue 16)', () => {
  // Rows of this stack's denials only: other suites share the database and may use the same loopback addresses.
  const denied = (userAgent: string) => stack.api.db('audit_events').where({ action: 'auth.denied', user_agent: userAgent }).orderBy('id');
  const agent = () => `denial-test/${uniqueName('ua')}`;
  const counted = (rows: { details: { count: number } }[]) => rows.reduce((n, r) => n + r.details.count, 0);
  const metric = async (labels: string) => {
    const text = (await stack.request('GET', '/metrics', { user: admin })).text;
    return Number(new RegExp(`^parley_auth_denials_total\\{${labels}\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  };

  it('records a burst of 401s as one row at once and one aggregated row when the window closes, and counts each', async () => {
    await stack.api.denials.flush();
    const ip = freshLoopback();
    const ua = agent();
    const before = await metric('status="401",family="auth"');
    for (let i = 0; i < 30; i++)
      expect(
        (await rawRequest(stack, 'GET', '/v1/auth/me', { headers: { authorization: 'Bearer not.a.token', 'user-agent': ua }, localAddress: ip })).status,
      ).toBe(401);
    await stack.api.denials.flush();
    const rows = await denied(ua);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      outcome: 'denied',
      target_type: 'route',
      target_id: 'GET /v1/auth/me',
      details: { status: 401, code: 'UNAUTHENTICATED', family: 'auth', count: 1 },
    });
    expect(rows[1].details).toMatchObject({ status: 401, count: 29, aggregated: true });
    expect(await metric('status="401",family="auth"')).toBe(before + 30);
  });

  it('records who was refused a 403', async () => {
    await stack.api.denials.flush();
    const member = await stack.user('member');
    const ua = agent();
    expect((await rawRequest(stack, 'GET', '/v1/admin/users', { headers: { ...member.auth, 'user-agent': ua }, localAddress: freshLoopback() })).status).toBe(
      403,
    );
    await stack.api.denials.flush();
    expect(await denied(ua)).toEqual([
      expect.objectContaining({
        actor_id: member.id,
        actor_name: member.username,
        details: expect.objectContaining({ status: 403, code: 'FORBIDDEN', family: 'admin' }),
      }),
    ]);
  });

  it("records the token endpoint's 429s", async () => {
    await stack.api.denials.flush();
    const ua = agent();
    const username = uniqueName('flood');
    const limit = stack.api.config.rateLimits.token.perUsername;
    for (let i = 0; i <= limit; i++)
      await tokenRequest(stack, { grant_type: 'password', username, password: 'wrong' }, { localAddress: freshLoopback(), headers: { 'user-agent': ua } });
    await stack.api.denials.flush();
    expect(await denied(ua)).toEqual([
      expect.objectContaining({ target_id: 'POST /v1/auth/token', details: expect.objectContaining({ status: 429, code: 'RATE_LIMITED', family: 'token' }) }),
    ]);
  });

  it('writes at most maxKeys rows at once in a window, and one overflow row for the rest, losing no count', async () => {
    await stack.api.denials.flush();
    const ips = Array.from({ length: maxKeys + 6 }, () => freshLoopback());
    const ua = agent();
    const firstId = ((await stack.api.db('audit_events').max({ id: 'id' }).first()) as { id: number }).id;
    for (const ip of ips)
      await rawRequest(stack, 'GET', '/v1/auth/sessions', { headers: { authorization: 'Bearer nope', 'user-agent': ua }, localAddress: ip });
    await stack.api.denials.flush();
    // Written as they happened: the first denial of each of the first maxKeys keys; the rest only counted.
    const rows = await denied(ua);
    expect(rows).toHaveLength(maxKeys);
    expect(rows.every((r) => !r.details.aggregated)).toBe(true);
    // The overflow row has no single caller: it is the one written since the burst (other suites' stacks allow 50 keys a window).
    const overflow = (await stack.api.db('audit_events').where({ action: 'auth.denied', target_id: '*' }).andWhere('id', '>', firstId)).filter(
      (r) => r.details.overflow,
    );
    expect(overflow).toHaveLength(1);
    expect(overflow[0].details).toMatchObject({ count: 6, byStatus: { 401: 6 } });
    expect(counted(rows) + overflow[0].details.count).toBe(ips.length);
  });
});
