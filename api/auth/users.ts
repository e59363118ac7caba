/**
 * Accounts: creation, role and disabled changes, passwords (change your own,
 * an admin's reset), and the bootstrap admin. A change that takes authority
 * away or hands the account to someone else ends the credentials issued
 * before it:
 *
 * | change                    | sessions                 | API keys |
 * |---------------------------|--------------------------|----------|
 * | role changed              | kept, re-read at once    | kept, narrowed by the new role |
 * | disabled                  | all revoked              | refused while disabled |
 * | own password changed      | all but the current one  | kept |
 * | password reset (admin)    | all revoked              | kept |
 * | bootstrap admin promotion | all revoked              | all revoked |
 */
import { randomUUID } from 'node:crypto';
import { UNIQUE_VIOLATION, type UserRow, type UserStore } from '../../platform/auth/index.ts';
import { Username, type ChangePassword, type Role, type UserList } from '../../shared/index.ts';
import { AppError } from '../domain/errors.ts';
import type { ApiKeys } from './api-keys.ts';
import { auditedBy, type Audit, type RequestMeta } from './audit.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import type { Actor } from './permissions.ts';
import type { Sessions } from './sessions.ts';
import type { AuthFailureListener } from './tokens.ts';
import type { OnRevoked } from './revocation.ts';

export interface UserDeps {
  store: UserStore;
  sessions: Sessions;
  apiKeys: ApiKeys;
  audit: Audit;
  config: { bootstrapAdmin?: { username: string; password: string } };
  onFailure?: AuthFailureListener;
  onRevoked?: OnRevoked;
}

/** Throws VALIDATION_FAILED naming `path` unless the password has 12 to 1024 characters. */
function checkPassword(password: string, path: string): void {
  if (password.length < 12) throw new AppError('VALIDATION_FAILED', { errors: [{ path, message: 'must be at least 12 characters' }] });
  if (password.length > 1024) throw new AppError('VALIDATION_FAILED', { errors: [{ path, message: 'must be at most 1024 characters' }] });
}

export function createUsers(deps: UserDeps) {
  const { store, sessions, audit } = deps;

  async function create(input: { username: string; password: string; role: Role }, by?: { actor?: Actor; meta?: RequestMeta }): Promise<UserRow> {
    if (!Username.safeParse(input.username).success)
      throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'username', message: '3 to 64 of A-Z a-z 0-9 _ . @ -' }] });
    checkPassword(input.password, 'password');
    const id = randomUUID();
    try {
      const row = await store.insert({ id, username: input.username, passwordHash: await hashPassword(input.password), role: input.role });
      await audit({
        action: 'user.created',
        outcome: 'success',
        ...auditedBy(by?.actor, by?.meta),
        targetType: 'user',
        targetId: id,
        details: { username: input.username, role: input.role },
      });
      return row;
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new AppError('INVALID_STATE', { detail: 'That username is taken' });
      throw err;
    }
  }

  return {
    find: (username: string) => store.byName(username),
    get: (id: string) => store.byId(id),
    create,

    async list(): Promise<UserList> {
      const rows = await store.list();
      return { items: rows.map((r) => ({ id: r.id, username: r.username, role: r.role, disabled: r.disabled, createdAt: r.created_at.toISOString() })) };
    },

    /**
     * Changes a user's role and/or disables (or re-enables) the account. A role change applies to live
     * sessions at their next request; disabling also revokes every session at once. A change that would
     * leave no enabled admin (the last one demoting or disabling themselves, or two admins demoting each
     * other at once) is INVALID_STATE and changes nothing.
     */
    async update(actor: Actor, userId: string, change: { role?: Role; disabled?: boolean }, meta: RequestMeta): Promise<UserRow> {
      const before = await store.byId(userId);
      if (!before) throw new AppError('NOT_FOUND');
      // A change to the role or the disabled flag must leave at least one enabled admin (checked and made atomically).
      const row =
        change.role !== undefined || change.disabled !== undefined ? await store.updateKeepingAnAdmin(userId, change) : await store.update(userId, change);
      if (row === 'last-admin')
        throw new AppError('INVALID_STATE', {
          detail: 'That would leave no enabled admin: promote or enable another admin first',
        });
      if (!row) throw new AppError('NOT_FOUND');
      // Live sessions and keys re-read the user at their next request, in every process. Bumped whenever
      // the request touches these fields (a concurrent change may have made `before` stale); a Redis
      // failure here does not undo the change, it only leaves memos to expire by age.
      if (change.role !== undefined || change.disabled !== undefined) {
        await sessions.userChanged(userId).catch(() => {});
        if (change.role !== before.role || change.disabled === true)
          deps.onRevoked?.({ userId, reason: change.disabled ? 'account disabled' : 'role changed' });
      }
      const by = { ...auditedBy(actor, meta), targetType: 'user', targetId: userId };
      if (change.role !== undefined && change.role !== before.role)
        await audit({ action: 'user.role_changed', outcome: 'success', ...by, details: { from: before.role, to: change.role } });
      if (change.disabled !== undefined && change.disabled !== before.disabled) {
        await audit({ action: 'user.disabled', outcome: 'success', ...by, details: { disabled: change.disabled } });
        if (change.disabled) await sessions.revokeAllOf(userId, 'account disabled');
      }
      return row;
    },

    /**
     * Changes the caller's own password, given the current one. Needs a session (an API key cannot), and
     * revokes every other session of the account; the calling one stays.
     */
    async changePassword(actor: Actor, input: ChangePassword, meta: RequestMeta): Promise<{ sessionsRevoked: number }> {
      if (!actor.sessionId) throw new AppError('FORBIDDEN', { detail: 'Changing a password needs a session (POST /v1/auth/token); an API key cannot' });
      const user = await store.byId(actor.userId);
      if (!user) throw new AppError('NOT_FOUND');
      const target = { ...auditedBy(actor, meta), targetType: 'user', targetId: user.id };
      if (!(await verifyPassword(user.password_hash, input.currentPassword))) {
        deps.onFailure?.('password', 'wrong_current_password');
        await audit({ action: 'user.password_changed', outcome: 'failure', ...target, details: { reason: 'wrong current password' } });
        throw new AppError('VALIDATION_FAILED', {
          detail: 'The current password is not correct',
          errors: [{ path: 'currentPassword', message: 'is not correct' }],
        });
      }
      checkPassword(input.newPassword, 'newPassword');
      // Only over the password just verified: of several changes at once, the first wins and the others
      // learn that the password they gave is no longer the current one.
      if (!(await store.update(user.id, { passwordHash: await hashPassword(input.newPassword) }, { ifPasswordHash: user.password_hash }))) {
        await audit({ action: 'user.password_changed', outcome: 'failure', ...target, details: { reason: 'changed meanwhile' } });
        throw new AppError('INVALID_STATE', {
          detail: 'The password was changed by another request meanwhile; the current password given is no longer the current one',
        });
      }
      const sessionsRevoked = await sessions.revokeAllOf(user.id, 'password changed', { except: actor.sessionId });
      await audit({ action: 'user.password_changed', outcome: 'success', ...target, details: { sessionsRevoked } });
      return { sessionsRevoked };
    },

    /** Sets a user's password (an admin, or the CLI) and revokes every session of the account. */
    async resetPassword(
      target: { id: string } | { username: string },
      password: string,
      by: { actor?: Actor; meta?: RequestMeta } = {},
    ): Promise<{ user: UserRow; sessionsRevoked: number }> {
      checkPassword(password, 'password');
      const user = 'id' in target ? await store.byId(target.id) : await store.byName(target.username);
      if (!user) throw new AppError('NOT_FOUND', { detail: 'No such user' });
      await store.update(user.id, { passwordHash: await hashPassword(password) });
      const sessionsRevoked = await sessions.revokeAllOf(user.id, 'password reset');
      await audit({
        action: 'user.password_reset',
        outcome: 'success',
        ...auditedBy(by.actor, by.meta),
        targetType: 'user',
        targetId: user.id,
        details: { username: user.username, sessionsRevoked },
      });
      return { user, sessionsRevoked };
    },

    /**
     * Creates the first admin from config when no enabled admin exists. An existing account of that
     * name is promoted, enabled and given the configured password; everything it was logged in with
     * before (sessions, API keys) is revoked, since the account now belongs to whoever set the variable.
     */
    async bootstrapAdmin(): Promise<'created' | 'promoted' | 'exists' | 'not-configured'> {
      const cfg = deps.config.bootstrapAdmin;
      if (!cfg) return 'not-configured';
      if (await store.anyEnabledAdmin()) return 'exists';
      const existing = await store.byName(cfg.username);
      if (!existing) {
        try {
          await create({ username: cfg.username, password: cfg.password, role: 'admin' });
        } catch (err) {
          // Several API processes starting together race for this insert; the one that lost finds it made.
          if (err instanceof AppError && err.code === 'INVALID_STATE' && (await store.byName(cfg.username))?.role === 'admin') return 'exists';
          throw err;
        }
        return 'created';
      }
      await store.update(existing.id, { role: 'admin', disabled: false, passwordHash: await hashPassword(cfg.password) });
      await sessions.userChanged(existing.id);
      const sessionsRevoked = await sessions.revokeAllOf(existing.id, 'bootstrap admin promotion');
      const keysRevoked = await deps.apiKeys.revokeAllOf(existing.id);
      await audit({
        action: 'user.bootstrap_promoted',
        outcome: 'success',
        userAgent: 'bootstrap',
        targetType: 'user',
        targetId: existing.id,
        details: { from: existing.role, wasDisabled: existing.disabled, sessionsRevoked, keysRevoked },
      });
      return 'promoted';
    },
  };
}

export type Users = ReturnType<typeof createUsers>;
