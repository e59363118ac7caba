/**
 * Identity: users, password logins, refresh sessions, access tokens and API
 * keys. Plain functions over plain arguments; routes and the Socket.IO
 * handshake call them.
 *
 * Tokens:
 * - access token: ES256 JWT, `kid` header, claims sub (user id), sid
 *   (session id), role, iss, aud, iat, nbf, exp; 15 min by default.
 *   Verification allows ES256 only and requires exp; the session is then
 *   checked against revocation (a Redis key, so revocation bites at once).
 *   The key ring is reread every minute (and on an unknown kid, at most
 *   every few seconds), so a rotation reaches every process.
 * - refresh token: `<session id>.<256-bit secret>`, stored hashed; each use
 *   rotates it. A refresh token used a second time revokes its session.
 * - API key: `pk_<key id>_<256-bit secret>`, shown once, stored hashed,
 *   scoped to permissions, optionally expiring, revocable.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { Redis } from 'ioredis';
import type { Config } from '../../platform/config.ts';
import type { Db } from '../../platform/db.ts';
import { AppError } from '../http/app-error.ts';
import type { Audit } from './audit.ts';
import { CredentialCache, revokedApiKeyKey, revokedSessionKey } from './credential-cache.ts';
import { ALGORITHM, KEYRING_TTL_MS, keyVerificationGraceMs, loadKeyRing, type KeyRing } from './keyring.ts';
import { hashPassword, prepareTimingEqualiser, verifyPassword } from './passwords.ts';
import { allPermissions, permissionsOf, Role, roleHas, type Actor, type Permission } from './permissions.ts';

export interface AuthDeps {
  db: Db;
  redis: Redis;
  config: Config;
  audit: Audit;
  keyPrefix: string;
  /** Hears every refused credential (metrics). `reason` is one of a small fixed set of slugs. */
  onFailure?: (kind: AuthFailureKind, reason: string) => void;
  /**
   * Hears a credential ended after its Redis marker is written (session or API key revoked, user's role
   * or disabled flag changed), so live connections authenticated with it can be ended at once, in every
   * API process (the Socket.IO Redis adapter carries it; api/realtime/socket.ts `endCredential`).
   */
  onRevoked?: (target: RevokedCredential) => void;
}

/** One credential that no longer stands, and why (a short human reason). */
export type RevokedCredential = { reason: string } & ({ sessionId: string } | { apiKeyId: string } | { userId: string });

/** bearer: an access token or API key was refused; password: a failed login; refresh: a refused or reused refresh token. */
export type AuthFailureKind = 'bearer' | 'password' | 'refresh';

export interface UserRow {
  id: string;
  username: string;
  password_hash: string | null;
  role: Role;
  disabled: boolean;
  created_at: Date;
}

export interface RequestMeta {
  ip?: string;
  userAgent?: string;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  scope: string;
}

/** Login names: what users type, so a plain, case-insensitively unique set of characters. */
export const Username = z.string().min(3).max(64).regex(/^[A-Za-z0-9_.@-]+$/);

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_');
/** Reloads on an unknown kid are at most this frequent, so forged kids cannot hammer Postgres. */
const KEYRING_MISS_RELOAD_MS = 5_000;

/** OAuth2 §5.2 errors, as problem+json that also carries `error` / `error_description`. */
export function oauthError(error: 'invalid_request' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope', description: string): AppError {
  const code = error === 'invalid_grant' ? 'INVALID_GRANT' : error === 'unsupported_grant_type' ? 'UNSUPPORTED_GRANT_TYPE' : 'INVALID_REQUEST';
  return new AppError(code, { detail: description, extra: { error, error_description: description }, headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' } });
}

function unauthenticated(description: string): AppError {
  return new AppError('UNAUTHENTICATED', { detail: description, headers: { 'WWW-Authenticate': `Bearer realm="parley", error="invalid_token", error_description="${description.replace(/"/g, "'")}"` } });
}

export function createAuthService(deps: AuthDeps) {
  const { db, redis, config, audit } = deps;
  void prepareTimingEqualiser().catch(() => {});
  const fail = (kind: AuthFailureKind, reason: string) => deps.onFailure?.(kind, slug(reason));
  const retiredGraceMs = keyVerificationGraceMs(config.auth.accessTtlSeconds);
  let ring: { at: number; value: Promise<KeyRing> } | undefined;
  let lastMissReload = 0;
  function keyring(maxAgeMs = KEYRING_TTL_MS): Promise<KeyRing> {
    if (!ring || Date.now() - ring.at >= maxAgeMs) {
      const value = loadKeyRing(db, { retiredGraceMs });
      const entry = { at: Date.now(), value };
      ring = entry;
      value.catch(() => {
        if (ring === entry) ring = undefined;
      });
    }
    return ring.value;
  }

  const credentials = new CredentialCache<UserRow>(
    redis,
    deps.keyPrefix,
    async (sid) => {
      const row = await db('sessions').where({ id: sid }).first('user_id', 'scope', 'expires_at', 'revoked_at');
      if (!row) return {};
      const user = await db<UserRow>('users').where({ id: row.user_id }).first();
      return { session: { userId: row.user_id, scope: row.scope, expiresAt: row.expires_at, revoked: row.revoked_at !== null }, user };
    },
    { maxAgeMs: config.auth.credentialCacheMs },
  );
  // The same for API keys, for the recheck of long-lived connections (a request still reads the key row).
  const apiKeyCredentials = new CredentialCache<UserRow>(
    redis,
    deps.keyPrefix,
    async (keyId) => {
      const row = await db('api_keys').where({ id: keyId }).first('user_id', 'expires_at', 'revoked_at');
      if (!row) return {};
      const user = await db<UserRow>('users').where({ id: row.user_id }).first();
      return { session: { userId: row.user_id, scope: null, expiresAt: row.expires_at ?? new Date(8.64e15), revoked: row.revoked_at !== null }, user };
    },
    { maxAgeMs: config.auth.credentialCacheMs, revokedKey: revokedApiKeyKey },
  );

  function actorFor(user: UserRow, extra: { sessionId?: string; apiKeyId?: string; scopes?: Permission[] }): Actor {
    const rolePerms = permissionsOf(user.role);
    const perms = extra.scopes ? rolePerms.filter((p) => extra.scopes!.includes(p)) : rolePerms;
    return { kind: extra.apiKeyId ? 'apiKey' : 'user', userId: user.id, username: user.username, role: user.role, permissions: new Set(perms), sessionId: extra.sessionId, apiKeyId: extra.apiKeyId };
  }

  async function issueAccess(user: UserRow, sessionId: string): Promise<string> {
    const { signing } = await keyring();
    return jwt.sign({ role: user.role, sid: sessionId }, signing.privatePem, {
      algorithm: ALGORITHM,
      keyid: signing.kid,
      subject: user.id,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      expiresIn: config.auth.accessTtlSeconds,
      notBefore: 0,
      jwtid: randomUUID(),
    });
  }

  async function issueRefresh(sessionId: string): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    const token = `${sessionId}.${secret}`;
    await db('refresh_tokens').insert({ token_hash: sha256(token), session_id: sessionId });
    return token;
  }

  /** `sessionScope` '' means "whatever the user's role holds now", so role changes apply to live sessions. */
  async function tokenResponse(user: UserRow, sessionId: string, sessionScope: string): Promise<TokenResponse> {
    const scope = sessionScope || permissionsOf(user.role).join(' ');
    return { access_token: await issueAccess(user, sessionId), token_type: 'Bearer', expires_in: config.auth.accessTtlSeconds, refresh_token: await issueRefresh(sessionId), scope };
  }

  async function revokeSession(sessionId: string, reason: string): Promise<boolean> {
    const n = await db('sessions').where({ id: sessionId }).whereNull('revoked_at').update({ revoked_at: db.fn.now(), revoked_reason: reason });
    // Access tokens of this session die now, not at their exp.
    await redis.set(revokedSessionKey(deps.keyPrefix, sessionId), reason, 'EX', config.auth.accessTtlSeconds + 60);
    credentials.forget(sessionId);
    deps.onRevoked?.({ sessionId, reason });
    return n > 0;
  }

  /**
   * The session scope for a requested OAuth2 scope: space-separated permissions the user's role holds.
   * No scope asked → '' (the role's permissions, as they are at each request).
   */
  function grantScope(user: UserRow, requested: string | undefined): string {
    if (!requested?.trim()) return '';
    const asked = [...new Set(requested.split(' ').filter(Boolean))];
    const bad = asked.filter((s) => !(allPermissions as string[]).includes(s) || !roleHas(user.role, s as Permission));
    if (bad.length) throw oauthError('invalid_scope', `scope not available: ${bad.join(' ')}`);
    return asked.join(' ');
  }

  return {
    async findUser(username: string): Promise<UserRow | undefined> {
      return db<UserRow>('users').whereRaw('lower(username) = lower(?)', [username]).first();
    },

    async getUser(id: string): Promise<UserRow | undefined> {
      return db<UserRow>('users').where({ id }).first();
    },

    async createUser(input: { username: string; password: string; role: Role }, by?: { actor?: Actor; meta?: RequestMeta }): Promise<UserRow> {
      if (!Username.safeParse(input.username).success) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'username', message: '3 to 64 of A-Z a-z 0-9 _ . @ -' }] });
      if (input.password.length < 12) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'password', message: 'must be at least 12 characters' }] });
      if (input.password.length > 1024) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'password', message: 'must be at most 1024 characters' }] });
      const id = randomUUID();
      try {
        const [row] = await db<UserRow>('users').insert({ id, username: input.username, password_hash: await hashPassword(input.password), role: input.role }).returning('*');
        await audit({ action: 'user.created', outcome: 'success', actorId: by?.actor?.userId, actorName: by?.actor?.username, ip: by?.meta?.ip, userAgent: by?.meta?.userAgent, targetType: 'user', targetId: id, details: { username: input.username, role: input.role } });
        return row!;
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new AppError('INVALID_STATE', { detail: 'That username is taken' });
        throw err;
      }
    },

    /** Creates the first admin from config when no admin exists yet. */
    async bootstrapAdmin(): Promise<'created' | 'exists' | 'not-configured'> {
      const cfg = config.auth.bootstrapAdmin;
      if (!cfg) return 'not-configured';
      const admin = await db('users').where({ role: 'admin', disabled: false }).first();
      if (admin) return 'exists';
      const existing = await this.findUser(cfg.username);
      if (existing) {
        await db('users').where({ id: existing.id }).update({ role: 'admin', disabled: false, password_hash: await hashPassword(cfg.password), updated_at: db.fn.now() });
        await credentials.userChanged(existing.id);
      } else {
        try {
          await this.createUser({ username: cfg.username, password: cfg.password, role: 'admin' });
        } catch (err) {
          // Several API processes starting together race for this insert; the one that lost finds it made.
          if (err instanceof AppError && err.code === 'INVALID_STATE' && (await this.findUser(cfg.username))?.role === 'admin') return 'exists';
          throw err;
        }
      }
      return 'created';
    },

    /** OAuth2 password grant (RFC 6749 §4.3). Unknown user and wrong password fail identically. */
    async passwordGrant(input: { username: string; password: string; scope?: string }, meta: RequestMeta): Promise<TokenResponse> {
      const user = await this.findUser(input.username);
      const ok = await verifyPassword(user && !user.disabled ? user.password_hash : undefined, input.password);
      if (!ok || !user) {
        fail('password', 'invalid_grant');
        await audit({ action: 'auth.login', outcome: 'failure', actorId: user?.id ?? null, actorName: input.username.slice(0, 200), ip: meta.ip, userAgent: meta.userAgent });
        throw oauthError('invalid_grant', 'The username or password is incorrect');
      }
      const scope = grantScope(user, input.scope);
      const sessionId = randomUUID();
      await db('sessions').insert({ id: sessionId, user_id: user.id, scope, ip: meta.ip ?? null, user_agent: meta.userAgent?.slice(0, 512) ?? null, expires_at: new Date(Date.now() + config.auth.refreshTtlSeconds * 1000) });
      await audit({ action: 'auth.login', outcome: 'success', actorId: user.id, actorName: user.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'session', targetId: sessionId });
      return tokenResponse(user, sessionId, scope);
    },

    /** Rotates a refresh token. A second use of any refresh token revokes its whole session. */
    async refreshGrant(token: string, meta: RequestMeta): Promise<TokenResponse> {
      const sessionId = token.split('.')[0] ?? '';
      const hash = sha256(token);
      const used = await db('refresh_tokens').where({ token_hash: hash }).whereNull('used_at').update({ used_at: db.fn.now() }).returning('session_id');
      const refused = async (reason: string, session?: { id: string; user_id: string }) => {
        fail('refresh', reason);
        await audit({ action: 'auth.refresh', outcome: 'failure', actorId: session?.user_id ?? null, ip: meta.ip, userAgent: meta.userAgent, targetType: session ? 'session' : undefined, targetId: session?.id, details: { reason } });
        return oauthError('invalid_grant', 'The refresh token is invalid, expired or revoked');
      };
      if (used.length === 0) {
        const known = await db('refresh_tokens').where({ token_hash: hash }).first();
        if (!known) throw await refused('unknown');
        // A rotated token came back: it leaked (or the client is broken). Either way the family dies.
        await revokeSession(known.session_id as string, 'refresh token reuse');
        const s = await db('sessions').where({ id: known.session_id }).first();
        fail('refresh', 'reuse');
        await audit({ action: 'auth.refresh_reuse', outcome: 'denied', actorId: s?.user_id ?? null, ip: meta.ip, userAgent: meta.userAgent, targetType: 'session', targetId: known.session_id as string });
        throw oauthError('invalid_grant', 'The refresh token is invalid, expired or revoked');
      }
      const session = await db('sessions').where({ id: used[0].session_id }).first();
      const user = session ? await this.getUser(session.user_id) : undefined;
      if (!session || session.id !== sessionId || session.revoked_at || session.expires_at < new Date() || !user || user.disabled) {
        throw await refused(session?.revoked_at ? 'revoked' : 'expired', session);
      }
      await db('sessions').where({ id: session.id }).update({ last_used_at: db.fn.now(), ip: meta.ip ?? session.ip });
      await audit({ action: 'auth.refresh', outcome: 'success', actorId: user.id, actorName: user.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'session', targetId: session.id });
      return tokenResponse(user, session.id, session.scope);
    },

    /** Verifies an access token or API key; throws UNAUTHENTICATED (with WWW-Authenticate) otherwise. */
    async authenticateToken(token: string): Promise<{ actor: Actor; expiresAt?: number }> {
      try {
        return await this.verifyCredential(token);
      } catch (err) {
        fail('bearer', err instanceof AppError ? (err.detail ?? err.code) : 'error');
        throw err;
      }
    },

    async verifyCredential(token: string): Promise<{ actor: Actor; expiresAt?: number }> {
      if (token.startsWith('pk_')) return { actor: await this.verifyApiKey(token) };
      const decoded = jwt.decode(token, { complete: true });
      if (!decoded || typeof decoded.payload === 'string') throw unauthenticated('malformed token');
      const kid = decoded.header.kid;
      if (typeof kid !== 'string' || !kid) throw unauthenticated('unknown signing key');
      let pem = (await keyring()).verifying.get(kid);
      // A key rotated in by another process since we loaded the ring: reread it, but not for every forged kid.
      if (!pem && Date.now() - lastMissReload > KEYRING_MISS_RELOAD_MS) {
        lastMissReload = Date.now();
        pem = (await keyring(0)).verifying.get(kid);
      }
      if (!pem) throw unauthenticated('unknown signing key');
      let claims: jwt.JwtPayload;
      try {
        claims = jwt.verify(token, pem, { algorithms: [ALGORITHM], issuer: config.auth.issuer, audience: config.auth.audience, clockTolerance: 5 }) as jwt.JwtPayload;
      } catch (err) {
        throw unauthenticated(err instanceof jwt.TokenExpiredError ? 'token expired' : err instanceof jwt.NotBeforeError ? 'token not yet valid' : 'invalid token');
      }
      if (typeof claims.exp !== 'number') throw unauthenticated('token has no expiry');
      if (typeof claims.sub !== 'string' || typeof claims.sid !== 'string') throw unauthenticated('invalid token');
      const { revoked, session, user } = await credentials.resolve(claims.sid, claims.sub);
      if (revoked || !session || session.revoked || session.userId !== claims.sub) throw unauthenticated('session revoked');
      if (session.expiresAt < new Date()) throw unauthenticated('session expired');
      if (!user || user.disabled) throw unauthenticated('account disabled');
      const scopes = session.scope ? (session.scope.split(' ') as Permission[]) : undefined;
      return { actor: actorFor(user, { sessionId: claims.sid, scopes }), expiresAt: claims.exp * 1000 };
    },

    /**
     * True while the credential behind `actor` still stands: session (or key) not revoked or expired,
     * account enabled, role unchanged. Long-lived connections call it periodically; a role change
     * ends them too, since their authorisation was decided with the old role.
     */
    async stillValid(actor: Actor): Promise<boolean> {
      if (actor.sessionId) {
        const { revoked, session, user } = await credentials.resolve(actor.sessionId, actor.userId);
        return Boolean(!revoked && session && !session.revoked && session.userId === actor.userId && session.expiresAt > new Date() && user && !user.disabled && user.role === actor.role);
      }
      if (actor.apiKeyId) {
        const { revoked, session: key, user } = await apiKeyCredentials.resolve(actor.apiKeyId, actor.userId);
        return Boolean(!revoked && key && !key.revoked && key.userId === actor.userId && key.expiresAt > new Date() && user && !user.disabled && user.role === actor.role);
      }
      return false;
    },

    async verifyApiKey(token: string): Promise<Actor> {
      const m = /^pk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/.exec(token);
      if (!m) throw unauthenticated('malformed API key');
      const id = `${m[1]!.slice(0, 8)}-${m[1]!.slice(8, 12)}-${m[1]!.slice(12, 16)}-${m[1]!.slice(16, 20)}-${m[1]!.slice(20)}`;
      const key = await db('api_keys').where({ id }).first();
      const expected = Buffer.from(key?.secret_hash ?? '0'.repeat(64), 'hex');
      const actual = Buffer.from(sha256(m[2]!), 'hex');
      if (!key || !timingSafeEqual(expected, actual)) throw unauthenticated('invalid API key');
      if (key.revoked_at) throw unauthenticated('API key revoked');
      if (key.expires_at && key.expires_at < new Date()) throw unauthenticated('API key expired');
      const user = await this.getUser(key.user_id);
      if (!user || user.disabled) throw unauthenticated('account disabled');
      void db('api_keys').where({ id }).update({ last_used_at: db.fn.now() }).catch(() => {});
      return actorFor(user, { apiKeyId: id, scopes: key.scopes as Permission[] });
    },

    /** Scoped to `scopes`, or to the permissions of `role`, or (neither) to everything the actor's role holds now. */
    async createApiKey(actor: Actor, input: { name: string; scopes?: Permission[]; role?: Role; expiresAt?: string }, meta: RequestMeta) {
      if (input.scopes && input.role) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'role', message: 'give scopes or role, not both' }] });
      if (input.expiresAt && Date.parse(input.expiresAt) <= Date.now()) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'expiresAt', message: 'must be in the future' }] });
      const available = permissionsOf(actor.role);
      const scopes = [...new Set(input.scopes ?? (input.role ? permissionsOf(input.role) : available))];
      const bad = scopes.filter((s) => !available.includes(s));
      if (bad.length) throw new AppError('FORBIDDEN', { detail: `Your role cannot grant: ${bad.join(', ')}` });
      const id = randomUUID();
      const secret = randomBytes(32).toString('base64url');
      await db('api_keys').insert({ id, user_id: actor.userId, name: input.name, secret_hash: sha256(secret), scopes: JSON.stringify(scopes), expires_at: input.expiresAt ?? null });
      await audit({ action: 'apikey.created', outcome: 'success', actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'api_key', targetId: id, details: { name: input.name, scopes } });
      return { id, name: input.name, scopes, expiresAt: input.expiresAt ?? null, key: `pk_${id.replace(/-/g, '')}_${secret}` };
    },

    async listApiKeys(actor: Actor) {
      const rows = await db('api_keys').where({ user_id: actor.userId }).orderBy('created_at', 'desc');
      return rows.map((r) => ({ id: r.id as string, name: r.name as string, scopes: r.scopes as string[], createdAt: (r.created_at as Date).toISOString(), expiresAt: (r.expires_at as Date | null)?.toISOString() ?? null, lastUsedAt: (r.last_used_at as Date | null)?.toISOString() ?? null, revokedAt: (r.revoked_at as Date | null)?.toISOString() ?? null }));
    },

    async revokeApiKey(actor: Actor, id: string, meta: RequestMeta): Promise<void> {
      const q = db('api_keys').where({ id }).whereNull('revoked_at');
      if (!roleHas(actor.role, 'users:manage')) q.andWhere({ user_id: actor.userId });
      const n = await q.update({ revoked_at: db.fn.now() });
      if (n === 0) throw new AppError('NOT_FOUND');
      // Connections authenticated with the key end at their next recheck, in every process.
      await redis.set(revokedApiKeyKey(deps.keyPrefix, id), 'revoked', 'EX', 86_400);
      apiKeyCredentials.forget(id);
      deps.onRevoked?.({ apiKeyId: id, reason: 'API key revoked' });
      await audit({ action: 'apikey.revoked', outcome: 'success', actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'api_key', targetId: id });
    },

    async listSessions(actor: Actor) {
      const rows = await db('sessions').where({ user_id: actor.userId }).whereNull('revoked_at').andWhere('expires_at', '>', db.fn.now()).orderBy('last_used_at', 'desc');
      return rows.map((r) => ({ id: r.id as string, current: r.id === actor.sessionId, createdAt: (r.created_at as Date).toISOString(), lastUsedAt: (r.last_used_at as Date).toISOString(), expiresAt: (r.expires_at as Date).toISOString(), ip: r.ip as string | null, userAgent: r.user_agent as string | null }));
    },

    /** Revokes one of the actor's sessions (or all, with id undefined). Others' sessions are NOT_FOUND. */
    async revokeSessions(actor: Actor, id: string | undefined, meta: RequestMeta, action: 'auth.logout' | 'auth.session_revoked' = 'auth.session_revoked'): Promise<number> {
      const q = db('sessions').where({ user_id: actor.userId }).whereNull('revoked_at');
      if (id) q.andWhere({ id });
      const rows = (await q.select('id')) as { id: string }[];
      if (id && rows.length === 0) throw new AppError('NOT_FOUND');
      for (const r of rows) {
        await revokeSession(r.id, action === 'auth.logout' ? 'logout' : 'revoked by user');
        await audit({ action, outcome: 'success', actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'session', targetId: r.id });
      }
      return rows.length;
    },

    /**
     * Changes a user's role and/or disables (or re-enables) the account. A role change applies to live
     * sessions at their next request; disabling also revokes every session at once.
     */
    async updateUser(actor: Actor, userId: string, change: { role?: Role; disabled?: boolean }, meta: RequestMeta): Promise<UserRow> {
      const before = await this.getUser(userId);
      if (!before) throw new AppError('NOT_FOUND');
      const [row] = (await db('users').where({ id: userId }).update({ ...change, updated_at: db.fn.now() }).returning('*')) as UserRow[];
      if (!row) throw new AppError('NOT_FOUND');
      // Live sessions and keys re-read the user at their next request, in every process. Bumped whenever
      // the request touches these fields (a concurrent change may have made `before` stale); a Redis
      // failure here does not undo the change, it only leaves memos to expire by age.
      if (change.role !== undefined || change.disabled !== undefined) {
        await credentials.userChanged(userId).catch(() => {});
        if (change.role !== before.role || change.disabled === true) deps.onRevoked?.({ userId, reason: change.disabled ? 'account disabled' : 'role changed' });
      }
      const by = { actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'user', targetId: userId };
      if (change.role !== undefined && change.role !== before.role) await audit({ action: 'user.role_changed', outcome: 'success', ...by, details: { from: before.role, to: change.role } });
      if (change.disabled !== undefined && change.disabled !== before.disabled) {
        await audit({ action: 'user.disabled', outcome: 'success', ...by, details: { disabled: change.disabled } });
        if (change.disabled) {
          const sessions = (await db('sessions').where({ user_id: userId }).whereNull('revoked_at').select('id')) as { id: string }[];
          for (const s of sessions) await revokeSession(s.id, 'account disabled');
        }
      }
      return row;
    },

    revokeSession,
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
