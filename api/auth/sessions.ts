/**
 * Refresh sessions: opened by a password grant, listed and revoked by their
 * user, revoked wholesale when an account is disabled, its password changes
 * or the bootstrap admin takes it over.
 *
 * Revoking writes `revoked_at` in Postgres and `<prefix>:revoked:session:<sid>`
 * in Redis (kept for the access-token lifetime plus a minute), so the
 * session's access tokens fail at their next request in every process, not
 * at their `exp`. What a session id resolves to is memoised per process
 * (credential-cache.ts); these markers are what keeps that memo honest.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SessionStore, UserRow, UserStore } from '../../platform/auth/index.ts';
import type { Session } from '../../shared/index.ts';
import { AppError } from '../domain/errors.ts';
import { auditedBy, type Audit, type RequestMeta } from './audit.ts';
import { CredentialCache, revokedSessionKey } from './credential-cache.ts';
import type { OnRevoked } from './revocation.ts';
import type { Actor } from './permissions.ts';

export interface SessionDeps {
  store: SessionStore;
  users: UserStore;
  redis: Redis;
  keyPrefix: string;
  audit: Audit;
  config: { accessTtlSeconds: number; refreshTtlSeconds: number; credentialCacheMs: number };
  onRevoked?: OnRevoked;
}

export function createSessions(deps: SessionDeps) {
  const { store, redis, config, audit } = deps;
  const credentials = new CredentialCache<UserRow>(
    redis,
    deps.keyPrefix,
    async (sid) => {
      const row = await store.byId(sid);
      if (!row) return {};
      const user = await deps.users.byId(row.user_id);
      return { session: { userId: row.user_id, scope: row.scope, expiresAt: row.expires_at, revoked: row.revoked_at !== null }, user };
    },
    { maxAgeMs: config.credentialCacheMs },
  );

  async function revoke(sessionId: string, reason: string): Promise<boolean> {
    const revoked = await store.markRevoked(sessionId, reason);
    // Access tokens of this session die now, not at their exp.
    await redis.set(revokedSessionKey(deps.keyPrefix, sessionId), reason, 'EX', config.accessTtlSeconds + 60);
    credentials.forget(sessionId);
    deps.onRevoked?.({ sessionId, reason });
    return revoked;
  }

  return {
    /** A new session for `user`, narrowed to `scope` ('' = the role's permissions at each request). */
    async open(user: UserRow, scope: string, meta: RequestMeta): Promise<string> {
      const id = randomUUID();
      await store.insert({
        id,
        userId: user.id,
        scope,
        ip: meta.ip ?? null,
        userAgent: meta.userAgent?.slice(0, 512) ?? null,
        expiresAt: new Date(Date.now() + config.refreshTtlSeconds * 1000),
      });
      return id;
    },

    /** The session and its user as a token's `sid` and `sub` claim them (revocation checked in Redis first). */
    resolve: (sid: string, uid: string) => credentials.resolve(sid, uid),

    /** Call after a user's role or disabled flag changed: every process re-reads the user at its next request. */
    userChanged: (uid: string) => credentials.userChanged(uid),

    revoke,

    /** Revokes every session of a user (but `except`); how many. */
    async revokeAllOf(userId: string, reason: string, opts: { except?: string } = {}): Promise<number> {
      const ids = await store.unrevokedIds(userId, { except: opts.except });
      for (const id of ids) await revoke(id, reason);
      return ids.length;
    },

    async list(actor: Actor): Promise<Session[]> {
      const rows = await store.live(actor.userId);
      return rows.map((r) => ({
        id: r.id,
        current: r.id === actor.sessionId,
        createdAt: r.created_at.toISOString(),
        lastUsedAt: r.last_used_at.toISOString(),
        expiresAt: r.expires_at.toISOString(),
        ip: r.ip,
        userAgent: r.user_agent,
      }));
    },

    /** Revokes one of the actor's sessions (or all, with id undefined). Others' sessions are NOT_FOUND. */
    async revokeOwn(
      actor: Actor,
      id: string | undefined,
      meta: RequestMeta,
      action: 'auth.logout' | 'auth.session_revoked' = 'auth.session_revoked',
    ): Promise<number> {
      const ids = await store.unrevokedIds(actor.userId, { only: id });
      if (id && ids.length === 0) throw new AppError('NOT_FOUND');
      for (const sid of ids) {
        await revoke(sid, action === 'auth.logout' ? 'logout' : 'revoked by user');
        await audit({ action, outcome: 'success', ...auditedBy(actor, meta), targetType: 'session', targetId: sid });
      }
      return ids.length;
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
