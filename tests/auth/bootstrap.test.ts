/**
 * The bootstrap admin (PARLEY_BOOTSTRAP_ADMIN_USER / _PASSWORD) on a
 * database of its own, since it acts only when no enabled admin exists:
 * a fresh account is created; an existing account of that name is promoted,
 * and everything it was logged in with before is revoked (issue 16).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../../api/main.ts';
import { createPrivateDatabase, type PrivateDatabase } from '../support/private-database.ts';

let database: PrivateDatabase;
const prefix = `t${randomUUID().slice(0, 8)}`;
const mongo = (() => {
  const u = new URL(process.env.MONGODB_URL!);
  u.pathname = `/${(u.pathname.replace(/^\//, '') || 'parley').replace(/(_test)?$/, '_test')}`;
  return u.toString();
})();
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: database.url,
    MONGODB_URL: mongo,
    PARLEY_KEY_PREFIX: prefix,
    PORT: '0',
    LOG_LEVEL: 'warn',
    ...extra,
  };
  if (!extra.PARLEY_BOOTSTRAP_ADMIN_USER) {
    delete e.PARLEY_BOOTSTRAP_ADMIN_USER;
    delete e.PARLEY_BOOTSTRAP_ADMIN_PASSWORD;
  }
  return e;
};

let api: Awaited<ReturnType<typeof startApi>>;
beforeAll(async () => {
  database = await createPrivateDatabase('boot');
  api = await startApi(env());
});
afterAll(async () => {
  await api?.stop();
  await database?.drop();
});

const get = (path: string, bearer: string) => fetch(`http://127.0.0.1:${api.port}${path}`, { headers: { authorization: `Bearer ${bearer}` } });

describe('bootstrap admin', () => {
  it('promotes an existing account and revokes its sessions and API keys', async () => {
    const username = `boss-${randomUUID().slice(0, 6)}`;
    const oldPassword = `old-${randomUUID()}`;
    const user = await api.auth.users.create({ username, password: oldPassword, role: 'member' });
    const tokens = await api.auth.grants.password({ username, password: oldPassword }, {});
    const actor = (await api.auth.tokens.verify(tokens.access_token)).actor;
    const key = await api.auth.apiKeys.create(actor, { name: 'old' }, {});
    expect((await get('/v1/auth/me', tokens.access_token)).status).toBe(200);
    expect((await get('/v1/auth/me', key.key)).status).toBe(200);

    const newPassword = `new-${randomUUID()}`;
    const second = await startApi(env({ PARLEY_BOOTSTRAP_ADMIN_USER: username, PARLEY_BOOTSTRAP_ADMIN_PASSWORD: newPassword }));
    await second.stop();

    expect((await get('/v1/auth/me', tokens.access_token)).status).toBe(401);
    expect((await get('/v1/auth/me', key.key)).status).toBe(401);
    await expect(api.auth.grants.refresh(tokens.refresh_token, {})).rejects.toMatchObject({ code: 'INVALID_GRANT' });
    await expect(api.auth.grants.password({ username, password: oldPassword }, {})).rejects.toMatchObject({ code: 'INVALID_GRANT' });
    const fresh = await api.auth.grants.password({ username, password: newPassword }, {});
    const me = await (await get('/v1/auth/me', fresh.access_token)).json();
    expect(me).toMatchObject({ id: user.id, role: 'admin' });
    const audit = await api.db('audit_events').where({ action: 'user.bootstrap_promoted', target_id: user.id }).first();
    expect(audit.details).toMatchObject({ from: 'member', sessionsRevoked: 1, keysRevoked: 1 });
  });

  it('does nothing once an enabled admin exists', async () => {
    const before = await api.db('users').where({ role: 'admin', disabled: false }).count({ n: '*' }).first();
    const second = await startApi(
      env({ PARLEY_BOOTSTRAP_ADMIN_USER: `other-${randomUUID().slice(0, 6)}`, PARLEY_BOOTSTRAP_ADMIN_PASSWORD: `pw-${randomUUID()}` }),
    );
    await second.stop();
    expect(await api.db('users').where({ role: 'admin', disabled: false }).count({ n: '*' }).first()).toEqual(before);
  });
});
