/**
 * Refresh sessions (`sessions`) and the refresh tokens issued for them
 * (`refresh_tokens`, by SHA-256; a session's tokens go with it on delete).
 *
 * A session is live while `revoked_at` is null and `expires_at` is ahead.
 * Consuming a refresh token is one conditional update (`used_at` null →
 * now), so of two concurrent uses exactly one wins; the other finds the
 * token used, which is how reuse is detected.
 */
import type { Db } from '../connections/index.ts';

export interface SessionRow {
  id: string;
  user_id: string;
  /** Space-separated permissions the session is narrowed to; '' = the role's, as they are at each request. */
  scope: string;
  ip: string | null;
  user_agent: string | null;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

export function createSessionStore(db: Db) {
  return {
    async insert(row: { id: string; userId: string; scope: string; ip: string | null; userAgent: string | null; expiresAt: Date }): Promise<void> {
      await db('sessions').insert({ id: row.id, user_id: row.userId, scope: row.scope, ip: row.ip, user_agent: row.userAgent, expires_at: row.expiresAt });
    },

    byId(id: string): Promise<SessionRow | undefined> {
      return db<SessionRow>('sessions').where({ id }).first();
    },

    async touch(id: string, ip: string | null): Promise<void> {
      await db('sessions')
        .where({ id })
        .update({ last_used_at: db.fn.now(), ...(ip ? { ip } : {}) });
    },

    /** Live sessions of a user, most recently used first. */
    live(userId: string): Promise<SessionRow[]> {
      return db<SessionRow>('sessions')
        .where({ user_id: userId })
        .whereNull('revoked_at')
        .andWhere('expires_at', '>', db.fn.now())
        .orderBy('last_used_at', 'desc');
    },

    /** Ids of a user's unrevoked sessions (expired ones included: revoking them is harmless), optionally one only, optionally all but one. */
    async unrevokedIds(userId: string, opts: { only?: string; except?: string } = {}): Promise<string[]> {
      const q = db('sessions').where({ user_id: userId }).whereNull('revoked_at');
      if (opts.only) q.andWhere({ id: opts.only });
      if (opts.except) q.andWhereNot({ id: opts.except });
      return ((await q.select('id')) as { id: string }[]).map((r) => r.id);
    },

    /** Marks a session revoked; false if it was already revoked or does not exist. */
    async markRevoked(id: string, reason: string): Promise<boolean> {
      return (await db('sessions').where({ id }).whereNull('revoked_at').update({ revoked_at: db.fn.now(), revoked_reason: reason })) > 0;
    },

    async insertRefreshToken(tokenHash: string, sessionId: string): Promise<void> {
      await db('refresh_tokens').insert({ token_hash: tokenHash, session_id: sessionId });
    },

    /** Marks an unused refresh token used and returns its session id; undefined if unknown or already used. */
    async consumeRefreshToken(tokenHash: string): Promise<string | undefined> {
      const rows = (await db('refresh_tokens')
        .where({ token_hash: tokenHash })
        .whereNull('used_at')
        .update({ used_at: db.fn.now() })
        .returning('session_id')) as { session_id: string }[];
      return rows[0]?.session_id;
    },

    /** The session a refresh token was issued for, used or not. */
    async refreshTokenSession(tokenHash: string): Promise<string | undefined> {
      const row = (await db('refresh_tokens').where({ token_hash: tokenHash }).first('session_id')) as { session_id: string } | undefined;
      return row?.session_id;
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
