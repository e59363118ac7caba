/**
 * The per-process memo of sessions and users behind bearer tokens: it saves
 * Postgres reads, and never lets a revocation, role change or disabling go
 * unseen at the next request — in this process or another one sharing Redis.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../../api/main.ts';
import { CredentialCache, revokedSessionKey, type SessionState, type UserState } from '../../api/auth/credential-cache.ts';
import { startStack, type Stack } from '../harness.ts';

const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
afterAll(() => redis.quit());

function fixture(maxAgeMs: number, now?: () => number) {
  const prefix = `cc-${randomUUID().slice(0, 8)}`;
  const sid = randomUUID();
  const uid = randomUUID();
  const state = { role: 'member', disabled: false };
  let loads = 0;
  const load = async () => {
    loads++;
    const session: SessionState = { userId: uid, scope: null, expiresAt: new Date(Date.now() + 60_000), revoked: false };
    const user: UserState = { id: uid, username: 'u', ...state };
    return { session, user };
  };
  const make = () => new CredentialCache(redis, prefix, load, { maxAgeMs, now });
  return { prefix, sid, uid, state, make, loads: () => loads };
}

describe('CredentialCache', () => {
  it('reads Postgres once per session while nothing changes', async () => {
    const f = fixture(60_000);
    const cache = f.make();
    for (let i = 0; i < 5; i++) expect((await cache.resolve(f.sid, f.uid)).user?.role).toBe('member');
    expect(f.loads()).toBe(1);
  });

  it('sees a role change made through another process at the next lookup', async () => {
    const f = fixture(60_000);
    const here = f.make();
    const elsewhere = f.make();
    await here.resolve(f.sid, f.uid);
    f.state.role = 'viewer';
    await elsewhere.userChanged(f.uid);
    expect((await here.resolve(f.sid, f.uid)).user?.role).toBe('viewer');
    expect(f.loads()).toBe(2);
  });

  it('reads the markers of concurrent lookups in shared round trips, each lookup getting its own answer', async () => {
    const prefix = `cc-${randomUUID().slice(0, 8)}`;
    const uid = randomUUID();
    const sids = Array.from({ length: 40 }, () => randomUUID());
    const revoked = new Set(sids.filter((_, i) => i % 7 === 3));
    for (const sid of revoked) await redis.set(revokedSessionKey(prefix, sid), 'test', 'EX', 60);
    // The same real Redis, its pipelines counted.
    const counted = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
    let pipelines = 0;
    const pipeline = counted.pipeline.bind(counted);
    counted.pipeline = ((...args: Parameters<typeof pipeline>) => {
      pipelines++;
      return pipeline(...args);
    }) as typeof counted.pipeline;
    try {
      const cache = new CredentialCache(
        counted,
        prefix,
        async (sid) => ({
          session: { userId: uid, scope: null, expiresAt: new Date(Date.now() + 60_000), revoked: false },
          user: { id: uid, username: sid, role: 'member', disabled: false },
        }),
        { maxAgeMs: 60_000 },
      );
      const answers = await Promise.all(sids.map((sid) => cache.resolve(sid, uid)));
      answers.forEach((a, i) => {
        expect(a.revoked).toBe(revoked.has(sids[i]!));
        if (!a.revoked) expect(a.user?.username).toBe(sids[i]);
      });
      expect(pipelines).toBeGreaterThan(0);
      expect(pipelines).toBeLessThan(sids.length / 4);
      // One at a time, nothing waits for company: one pipeline per lookup.
      const before = pipelines;
      for (const sid of sids.slice(0, 3)) await cache.resolve(sid, uid);
      expect(pipelines - before).toBe(3);
    } finally {
      counted.disconnect();
    }
  });

  it('reports a revoked session from Redis without reading Postgres', async () => {
    const f = fixture(60_000);
    const cache = f.make();
    await cache.resolve(f.sid, f.uid);
    await redis.set(revokedSessionKey(f.prefix, f.sid), 'test', 'EX', 60);
    expect(await cache.resolve(f.sid, f.uid)).toEqual({ revoked: true });
    expect(f.loads()).toBe(1);
  });

  it('re-reads after maxAgeMs, and on every lookup when maxAgeMs is 0', async () => {
    // The cache's clock, moved by hand: an entry is served up to maxAgeMs after it was read, then read again.
    let clock = 1_000_000;
    const aged = fixture(50, () => clock);
    const cache = aged.make();
    await cache.resolve(aged.sid, aged.uid);
    clock += 49;
    await cache.resolve(aged.sid, aged.uid);
    expect(aged.loads()).toBe(1);
    clock += 1;
    await cache.resolve(aged.sid, aged.uid);
    expect(aged.loads()).toBe(2);

    const off = fixture(0);
    const nocache = off.make();
    for (let i = 0; i < 3; i++) await nocache.resolve(off.sid, off.uid);
    expect(off.loads()).toBe(3);
    expect(nocache.size).toBe(0);
  });

  it('does not serve an entry to a token whose subject differs from the session owner', async () => {
    const f = fixture(60_000);
    const cache = f.make();
    await cache.resolve(f.sid, f.uid);
    const other = await cache.resolve(f.sid, randomUUID());
    expect(f.loads()).toBe(2);
    expect(other.session?.userId).toBe(f.uid);
  });
});

describe('two API processes sharing Redis and Postgres', () => {
  let stack: Stack;
  let second: Awaited<ReturnType<typeof startApi>>;
  const on = (base: string, path: string, token: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

  beforeAll(async () => {
    stack = await startStack({ workers: false });
    second = await startApi({ ...stack.env, PORT: '0' });
  });
  afterAll(async () => {
    await second?.stop();
    await stack?.stop();
  });

  it('a role change and a disabling made on one apply to the other at its next request', async () => {
    const admin = await stack.user('admin');
    const u = await stack.user('member');
    const other = `http://127.0.0.1:${second.port}`;
    // Warm the second process's memo with the member's session.
    const before = await on(other, '/v1/auth/me', u.token);
    expect((await before.json()).role).toBe('member');

    expect((await stack.request('PATCH', `/v1/admin/users/${u.id}`, { user: admin, body: { role: 'viewer' } })).status).toBe(200);
    const demoted = await on(other, '/v1/auth/me', u.token);
    expect((await demoted.json()).role).toBe('viewer');
    expect((await on(other, '/v1/jobs', u.token, { method: 'POST', body: JSON.stringify({ kind: 'system.ping', input: {} }) })).status).toBe(403);

    expect((await stack.request('PATCH', `/v1/admin/users/${u.id}`, { user: admin, body: { disabled: true } })).status).toBe(200);
    expect((await on(other, '/v1/auth/me', u.token)).status).toBe(401);
  });

  it('a logout on one ends the session on the other at once', async () => {
    const u = await stack.user('member');
    const other = `http://127.0.0.1:${second.port}`;
    expect((await on(other, '/v1/auth/me', u.token)).status).toBe(200);
    expect((await stack.request('POST', '/v1/auth/logout', { user: u })).status).toBeLessThan(300);
    expect((await on(other, '/v1/auth/me', u.token)).status).toBe(401);
  });
});
