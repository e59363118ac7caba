/**
 * The `users` table. Usernames are unique case-insensitively (a unique index
 * on lower(username)), so every lookup by name compares lowercased.
 */
import type { Role } from '../../shared/index.ts';
import type { Db } from '../connections/index.ts';
import { SYSTEM_USER_ID } from '../jobs/index.ts';

export interface UserRow {
  id: string;
  username: string;
  /** argon2id PHC string; null for accounts that cannot log in (system). */
  password_hash: string | null;
  role: Role;
  disabled: boolean;
  created_at: Date;
}

/** Postgres' unique_violation: the username is taken. */
export const UNIQUE_VIOLATION = '23505';

export function createUserStore(db: Db) {
  return {
    byName(username: string): Promise<UserRow | undefined> {
      return db<UserRow>('users').whereRaw('lower(username) = lower(?)', [username]).first();
    },

    byId(id: string): Promise<UserRow | undefined> {
      return db<UserRow>('users').where({ id }).first();
    },

    /** Throws the driver's error with `code` UNIQUE_VIOLATION when the name is taken. */
    async insert(row: { id: string; username: string; passwordHash: string; role: Role }): Promise<UserRow> {
      const [created] = await db<UserRow>('users')
        .insert({ id: row.id, username: row.username, password_hash: row.passwordHash, role: row.role })
        .returning('*');
      return created!;
    },

    /**
     * Changes the row; with `ifPasswordHash`, only while the password hash is still that one (a compare-and-set:
     * undefined when another change came first).
     */
    async update(
      id: string,
      change: { role?: Role; disabled?: boolean; passwordHash?: string },
      opts: { ifPasswordHash?: string | null } = {},
    ): Promise<UserRow | undefined> {
      const { passwordHash, ...rest } = change;
      const q = db('users').where({ id });
      if (opts.ifPasswordHash === null) q.whereNull('password_hash');
      else if (opts.ifPasswordHash !== undefined) q.where({ password_hash: opts.ifPasswordHash });
      const [row] = (await q
        .update({ ...rest, ...(passwordHash !== undefined ? { password_hash: passwordHash } : {}), updated_at: db.fn.now() })
        .returning('*')) as UserRow[];
      return row;
    },

    /**
     * Changes a role or the disabled flag unless that would leave no enabled admin: then 'last-admin' and
     * nothing changes. The built-in `system` user never counts (an admin row, but internal and disabled).
     * The check and the update run in one transaction under one advisory lock, so two admins demoting or
     * disabling each other at once cannot both pass the check against the other's row.
     */
    async updateKeepingAnAdmin(id: string, change: { role?: Role; disabled?: boolean }): Promise<UserRow | undefined | 'last-admin'> {
      return db.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(hashtext(?))', ['parley.users:admins']);
        const admins = (await trx('users').where({ role: 'admin', disabled: false }).whereNot({ id: SYSTEM_USER_ID }).pluck('id')) as string[];
        const removesAdmin = (change.role !== undefined && change.role !== 'admin') || change.disabled === true;
        if (removesAdmin && admins.includes(id) && admins.length === 1) return 'last-admin';
        const [row] = (await trx('users')
          .where({ id })
          .update({ ...change, updated_at: trx.fn.now() })
          .returning('*')) as UserRow[];
        return row;
      });
    },

    async anyEnabledAdmin(): Promise<boolean> {
      return (await db('users').where({ role: 'admin', disabled: false }).first('id')) !== undefined;
    },

    list(): Promise<Pick<UserRow, 'id' | 'username' | 'role' | 'disabled' | 'created_at'>[]> {
      return db<UserRow>('users').select('id', 'username', 'role', 'disabled', 'created_at').orderBy('created_at');
    },
  };
}

export type UserStore = ReturnType<typeof createUserStore>;
