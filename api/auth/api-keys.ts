/**
 * API keys, for scripts and services: `pk_<key id>_<256-bit secret>`, shown
 * once, stored as SHA-256 (the secret is random, so a fast hash is enough),
 * scoped, optionally expiring, revocable, and capped per user.
 *
 * A key is minted by a credential and never exceeds it: its scopes are a
 * subset of the minting credential's effective permissions (a session's, or
 * a key's own scopes narrowed by the role), and a key minted by an expiring
 * key expires no later than its parent.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ApiKeyStore, UserRow, UserStore } from '../../platform/auth/index.ts';
import type { ApiKey, CreateApiKey, CreatedApiKey, Permission } from '../../shared/index.ts';
import { AppError } from '../domain/errors.ts';
import { auditedBy, type Audit, type RequestMeta } from './audit.ts';
import { CredentialCache, revokedApiKeyKey } from './credential-cache.ts';
import type { OnRevoked } from './revocation.ts';
import { actorOf, can, permissionsOf, type Actor } from './permissions.ts';
import { unauthenticated } from './unauthenticated.ts';

export interface ApiKeyDeps {
  store: ApiKeyStore;
  users: UserStore;
  redis: Redis;
  keyPrefix: string;
  audit: Audit;
  config: { credentialCacheMs: number; maxPerUser: number };
  onRevoked?: OnRevoked;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** How long a revocation marker outlives the key's last possible memo. */
const REVOKED_MARKER_TTL_S = 86_400;

export function createApiKeys(deps: ApiKeyDeps) {
  const { store, redis, audit } = deps;
  // For the recheck of long-lived connections (a request still reads the key row).
  const credentials = new CredentialCache<UserRow>(
    redis,
    deps.keyPrefix,
    async (keyId) => {
      const row = await store.byId(keyId);
      if (!row) return {};
      const user = await deps.users.byId(row.user_id);
      return { session: { userId: row.user_id, scope: null, expiresAt: row.expires_at ?? new Date(8.64e15), revoked: row.revoked_at !== null }, user };
    },
    { maxAgeMs: deps.config.credentialCacheMs, revokedKey: revokedApiKeyKey },
  );

  async function markRevoked(id: string): Promise<void> {
    // Connections authenticated with the key end at their next recheck, in every process.
    await redis.set(revokedApiKeyKey(deps.keyPrefix, id), 'revoked', 'EX', REVOKED_MARKER_TTL_S);
    credentials.forget(id);
    deps.onRevoked?.({ apiKeyId: id, reason: 'API key revoked' });
  }

  /** The expiry a new key may have: the one asked for, capped by (or, if none is asked, inherited from) an expiring parent key. */
  async function expiryFor(actor: Actor, asked: string | undefined): Promise<string | null> {
    if (!actor.apiKeyId) return asked ?? null;
    const parent = (await store.byId(actor.apiKeyId))?.expires_at;
    if (!parent) return asked ?? null;
    if (!asked) return parent.toISOString();
    if (Date.parse(asked) > parent.getTime())
      throw new AppError('FORBIDDEN', { detail: `This API key expires at ${parent.toISOString()}; a key it creates cannot outlive it` });
    return asked;
  }

  return {
    /** Scoped to `scopes`, or to the permissions of `role`, or (neither) to everything the calling credential holds now. */
    async create(actor: Actor, input: CreateApiKey, meta: RequestMeta): Promise<CreatedApiKey> {
      if (input.scopes && input.role) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'role', message: 'give scopes or role, not both' }] });
      if (input.expiresAt && Date.parse(input.expiresAt) <= Date.now())
        throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'expiresAt', message: 'must be in the future' }] });
      // The calling credential's effective permissions: its role's, narrowed by a session's or key's scopes.
      const available = [...actor.permissions];
      const scopes = [...new Set(input.scopes ?? (input.role ? permissionsOf(input.role) : available))];
      const bad = scopes.filter((s) => !actor.permissions.has(s));
      if (bad.length) throw new AppError('FORBIDDEN', { detail: `Your ${actor.kind === 'apiKey' ? 'API key' : 'credential'} cannot grant: ${bad.join(', ')}` });
      const expiresAt = await expiryFor(actor, input.expiresAt);
      const id = randomUUID();
      const secret = randomBytes(32).toString('base64url');
      const inserted = await store.insertCapped(
        { id, userId: actor.userId, name: input.name, secretHash: sha256(secret), scopes, expiresAt },
        deps.config.maxPerUser,
      );
      if (!inserted)
        throw new AppError('LIMIT_EXCEEDED', { detail: `You have ${deps.config.maxPerUser} live API keys, the most allowed per user; revoke one first` });
      await audit({
        action: 'apikey.created',
        outcome: 'success',
        ...auditedBy(actor, meta),
        targetType: 'api_key',
        targetId: id,
        details: { name: input.name, scopes, expiresAt, ...(actor.apiKeyId ? { parentKey: actor.apiKeyId } : {}) },
      });
      return { id, name: input.name, scopes, expiresAt, key: `pk_${id.replace(/-/g, '')}_${secret}` };
    },

    async list(actor: Actor): Promise<ApiKey[]> {
      const rows = await store.listOf(actor.userId);
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        scopes: r.scopes,
        createdAt: r.created_at.toISOString(),
        expiresAt: r.expires_at?.toISOString() ?? null,
        lastUsedAt: r.last_used_at?.toISOString() ?? null,
        revokedAt: r.revoked_at?.toISOString() ?? null,
      }));
    },

    /** Revokes a key of the actor's (anyone's, for a credential holding users:manage); otherwise NOT_FOUND. */
    async revoke(actor: Actor, id: string, meta: RequestMeta): Promise<void> {
      if (!(await store.revoke(id, can(actor, 'users:manage') ? undefined : actor.userId))) throw new AppError('NOT_FOUND');
      await markRevoked(id);
      await audit({ action: 'apikey.revoked', outcome: 'success', ...auditedBy(actor, meta), targetType: 'api_key', targetId: id });
    },

    /** Revokes every live key of a user; how many. */
    async revokeAllOf(userId: string): Promise<number> {
      const ids = await store.revokeAllOf(userId);
      for (const id of ids) await markRevoked(id);
      return ids.length;
    },

    /** The actor an API key stands for; UNAUTHENTICATED if malformed, unknown, wrong, revoked, expired or its owner is disabled. */
    async verify(token: string): Promise<Actor> {
      const m = /^pk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/.exec(token);
      if (!m) throw unauthenticated('malformed API key');
      const hex = m[1]!;
      const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      const key = await store.byId(id);
      const expected = Buffer.from(key?.secret_hash ?? '0'.repeat(64), 'hex');
      const actual = Buffer.from(sha256(m[2]!), 'hex');
      if (!key || !timingSafeEqual(expected, actual)) throw unauthenticated('invalid API key');
      if (key.revoked_at) throw unauthenticated('API key revoked');
      if (key.expires_at && key.expires_at < new Date()) throw unauthenticated('API key expired');
      const user = await deps.users.byId(key.user_id);
      if (!user || user.disabled) throw unauthenticated('account disabled');
      void store.touch(id).catch(() => {});
      return actorOf(user, { apiKeyId: id, scopes: key.scopes as Permission[] });
    },

    /** True while the key behind `actor` stands: not revoked or expired, owner enabled, role unchanged. */
    async stillValid(actor: Actor): Promise<boolean> {
      if (!actor.apiKeyId) return false;
      const { revoked, session: key, user } = await credentials.resolve(actor.apiKeyId, actor.userId);
      return Boolean(
        !revoked && key && !key.revoked && key.userId === actor.userId && key.expiresAt > new Date() && user && !user.disabled && user.role === actor.role,
      );
    },
  };
}

export type ApiKeys = ReturnType<typeof createApiKeys>;
