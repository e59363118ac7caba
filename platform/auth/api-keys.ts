/**
 * The `api_keys` table: one row per key, the secret stored as SHA-256, the
 * scopes as a JSON array. A user's live keys (unrevoked, unexpired) are
 * capped: the count and the insert run in one transaction that holds the
 * user's row, so concurrent creations cannot overshoot the cap.
 */
import type { Permission } from '../../shared/index.ts';
import type { Db } from '../connections/index.ts';

export interface ApiKeyRow {
  id: string;
  user_id: string;
  name: string;
  secret_hash: string;
  scopes: Permission[];
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export function createApiKeyStore(db: Db) {
  return {
    byId(id: string): Promise<ApiKeyRow | undefined> {
      return db<ApiKeyRow>('api_keys').where({ id }).first();
    },

    /** Inserts the key unless the user already has `maxLive` live keys; false when the cap is reached. */
    async insertCapped(
      row: { id: string; userId: string; name: string; secretHash: string; scopes: Permission[]; expiresAt: string | null },
      maxLive: number,
    ): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx('users').where({ id: row.userId }).forUpdate().first('id');
        const [live] = await tx('api_keys')
          .where({ user_id: row.userId })
          .whereNull('revoked_at')
          .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', tx.fn.now()))
          .count({ n: '*' });
        if (Number((live as { n: number | string }).n) >= maxLive) return false;
        await tx('api_keys').insert({
          id: row.id,
          user_id: row.userId,
          name: row.name,
          secret_hash: row.secretHash,
          scopes: JSON.stringify(row.scopes),
          expires_at: row.expiresAt,
        });
        return true;
      });
    },

    listOf(userId: string): Promise<ApiKeyRow[]> {
      return db<ApiKeyRow>('api_keys').where({ user_id: userId }).orderBy('created_at', 'desc');
    },

    /** Revokes a live key; with `ownerId`, only if it is that user's. False when nothing was revoked. */
    async revoke(id: string, ownerId?: string): Promise<boolean> {
      const q = db('api_keys').where({ id }).whereNull('revoked_at');
      if (ownerId) q.andWhere({ user_id: ownerId });
      return (await q.update({ revoked_at: db.fn.now() })) > 0;
    },

    /** Revokes every live key of a user; the ids revoked. */
    async revokeAllOf(userId: string): Promise<string[]> {
      const rows = (await db('api_keys').where({ user_id: userId }).whereNull('revoked_at').update({ revoked_at: db.fn.now() }).returning('id')) as {
        id: string;
      }[];
      return rows.map((r) => r.id);
    },

    async touch(id: string): Promise<void> {
      await db('api_keys').where({ id }).update({ last_used_at: db.fn.now() });
    },
  };
}

export type ApiKeyStore = ReturnType<typeof createApiKeyStore>;
