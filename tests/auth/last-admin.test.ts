/**
 * The last enabled admin (regression): PATCH /v1/admin/users/<own id> with
 * `{"role":"member"}` or `{"disabled":true}` answered 200 and left the
 * platform with no admin at all. A change that would leave no enabled admin is
 * now 409 INVALID_STATE, also when two admins demote each other at once. The
 * built-in `system` user (an admin row, disabled and internal) never counts.
 * On a database of its own, since it needs to know every admin there is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_USER_ID } from '../../platform/jobs/index.ts';
import { startStack, type Stack } from '../harness.ts';
import { createPrivateDatabase, type PrivateDatabase } from '../support/private-database.ts';

let database: PrivateDatabase;
let stack: Stack;

beforeAll(async () => {
  database = await createPrivateDatabase('lastadmin');
  stack = await startStack({ workers: false, env: { DATABASE_URL: database.url, PARLEY_RATE_API_WRITE: 'admin=100000' } });
});
afterAll(async () => {
  await stack?.stop();
  await database?.drop();
});

const patch = (by: { auth: { authorization: string } }, id: string, body: object) =>
  stack.request('PATCH', `/v1/admin/users/${id}`, { headers: by.auth, body });
const enabledAdmins = async () =>
  (await stack.api.db('users').where({ role: 'admin', disabled: false }).whereNot({ id: SYSTEM_USER_ID }).pluck('id')) as string[];

describe('the last enabled admin', () => {
  it('cannot demote or disable themselves: 409 INVALID_STATE, nothing changes; the system user does not count', async () => {
    expect(await enabledAdmins()).toEqual([]);
    const admin = await stack.user('admin');
    // The system user is an admin row; even enabled (by hand, in this private database) it is not a second admin.
    expect((await stack.api.db('users').where({ id: SYSTEM_USER_ID }).first()).role).toBe('admin');
    await stack.api.db('users').where({ id: SYSTEM_USER_ID }).update({ disabled: false });
    for (const body of [{ role: 'member' }, { disabled: true }, { role: 'viewer', disabled: true }]) {
      const r = await patch(admin, admin.id, body);
      expect(r.status).toBe(409);
      expect(r.json.code).toBe('INVALID_STATE');
      expect(r.json.detail).toMatch(/no enabled admin/);
    }
    expect(await enabledAdmins()).toEqual([admin.id]);
    await stack.api.db('users').where({ id: SYSTEM_USER_ID }).update({ disabled: true });
    // A change that keeps the role is not refused.
    expect((await patch(admin, admin.id, { role: 'admin', disabled: false })).status).toBe(200);

    // With a second admin, one may step down; then the other is the last.
    const second = await stack.user('admin');
    expect((await patch(admin, admin.id, { role: 'operator' })).status).toBe(200);
    expect((await patch(second, second.id, { disabled: true })).status).toBe(409);
    expect(await enabledAdmins()).toEqual([second.id]);
  });

  it('two admins demoting each other at once: one succeeds, the other is 409, an admin remains', async () => {
    // Start from exactly two enabled admins.
    for (const id of await enabledAdmins()) await stack.api.db('users').where({ id }).update({ role: 'member' });
    const a = await stack.user('admin');
    const b = await stack.user('admin');
    for (let round = 0; round < 10; round++) {
      const [ra, rb] = await Promise.all([patch(a, b.id, { role: 'member' }), patch(b, a.id, { disabled: true })]);
      const statuses = [ra.status, rb.status].sort();
      // One wins; the loser is refused (409), or (if the winner's change landed first and took its
      // admin rights away) 403, never a second 200.
      expect(statuses[0]).toBe(200);
      expect([403, 409]).toContain(statuses[1]);
      expect((await enabledAdmins()).length).toBe(1);
      // Back to two admins for the next round, both sessions re-enabled by re-logging in.
      await stack.api.db('users').whereIn('id', [a.id, b.id]).update({ role: 'admin', disabled: false });
      for (const u of [a, b]) {
        const t = await stack.api.auth.grants.password({ username: u.username, password: u.password }, { ip: '127.0.0.1' });
        u.auth = { authorization: `Bearer ${t.access_token}` };
      }
    }
  });
});
