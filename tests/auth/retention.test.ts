/**
 * Retention of what grows with use (issue 16): sessions that ended (expired
 * or revoked) more than PARLEY_SESSION_RETENTION_DAYS ago go, with their
 * refresh tokens; failed sign-ins in the audit log older than
 * PARLEY_FAILED_LOGIN_RETENTION_DAYS go; nothing else does, and the audit
 * log stays append-only for every other row and every other caller.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let user: TestUser;
const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY);

beforeAll(async () => {
  stack = await startStack({ workers: false, env: { PARLEY_SESSION_RETENTION_DAYS: '7', PARLEY_FAILED_LOGIN_RETENTION_DAYS: '30' } });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

async function session(fields: { expiresAt: Date; revokedAt?: Date }): Promise<string> {
  const id = randomUUID();
  await stack.api.db('sessions').insert({
    id,
    user_id: user.id,
    scope: '',
    expires_at: fields.expiresAt,
    revoked_at: fields.revokedAt ?? null,
    created_at: ago(60),
    last_used_at: ago(60),
  });
  await stack.api.db('refresh_tokens').insert({ token_hash: `retention-${id}`, session_id: id });
  return id;
}

async function auditRow(action: string, outcome: string, at: Date): Promise<number> {
  const [row] = await stack.api
    .db('audit_events')
    .insert({ action, outcome, at, actor_name: `retention-${randomUUID().slice(0, 8)}` })
    .returning('id');
  return (row as { id: number }).id;
}

const exists = async (table: string, where: Record<string, unknown>) => (await stack.api.db(table).where(where).first()) !== undefined;

describe('the auth retention round', () => {
  it('purges sessions ended more than the retention ago, with their refresh tokens, and keeps the rest', async () => {
    const expiredLongAgo = await session({ expiresAt: ago(10) });
    const revokedLongAgo = await session({ expiresAt: new Date(Date.now() + DAY), revokedAt: ago(8) });
    const expiredRecently = await session({ expiresAt: ago(1) });
    const revokedRecently = await session({ expiresAt: ago(20), revokedAt: ago(2) });
    const live = await session({ expiresAt: new Date(Date.now() + DAY) });
    await stack.api.authRetention.runOnce();
    expect(await exists('sessions', { id: expiredLongAgo })).toBe(false);
    expect(await exists('sessions', { id: revokedLongAgo })).toBe(false);
    expect(await exists('refresh_tokens', { session_id: expiredLongAgo })).toBe(false);
    for (const id of [expiredRecently, revokedRecently, live]) expect(await exists('sessions', { id })).toBe(true);
  });

  it('purges old failed sign-ins from the audit log and keeps every other row', async () => {
    const oldFailedLogin = await auditRow('auth.login', 'failure', ago(31));
    const oldFailedRefresh = await auditRow('auth.refresh', 'failure', ago(40));
    const recentFailedLogin = await auditRow('auth.login', 'failure', ago(29));
    const oldSuccess = await auditRow('auth.login', 'success', ago(100));
    const oldOther = await auditRow('apikey.created', 'success', ago(100));
    const oldDenied = await auditRow('auth.refresh_reuse', 'denied', ago(100));
    await stack.api.authRetention.runOnce();
    expect(await exists('audit_events', { id: oldFailedLogin })).toBe(false);
    expect(await exists('audit_events', { id: oldFailedRefresh })).toBe(false);
    for (const id of [recentFailedLogin, oldSuccess, oldOther, oldDenied]) expect(await exists('audit_events', { id })).toBe(true);
  });

  it('runs by itself in the API process', async () => {
    const stale = await session({ expiresAt: ago(30) });
    // The first round comes within a second of start, then every PARLEY_AUTH_PURGE_INTERVAL_S; this stack is past its first.
    const other = await startStack({ workers: false, env: { PARLEY_AUTH_PURGE_INTERVAL_S: '1' } });
    try {
      await expect.poll(() => exists('sessions', { id: stale }), { timeout: 15_000, interval: 200 }).toBe(false);
    } finally {
      await other.stop();
    }
  });
});

describe('the audit log stays append-only', () => {
  it('refuses a direct DELETE, even of an old failed login', async () => {
    const id = await auditRow('auth.login', 'failure', ago(400));
    await expect(stack.api.db('audit_events').where({ id }).delete()).rejects.toThrow(/append-only/);
  });

  it('refuses a DELETE of any other row with the purge flag set by hand', async () => {
    const id = await auditRow('auth.login', 'success', ago(400));
    await expect(
      stack.api.db.transaction(async (tx) => {
        await tx.raw(`select set_config('parley.audit_purge', 'failed_logins', true)`);
        await tx('audit_events').where({ id }).delete();
      }),
    ).rejects.toThrow(/append-only/);
  });

  it('refuses UPDATE of a failed login', async () => {
    const id = await auditRow('auth.login', 'failure', ago(400));
    await expect(stack.api.db('audit_events').where({ id }).update({ outcome: 'success' })).rejects.toThrow(/append-only/);
  });
});
