/**
 * The OAuth2 grants of the token endpoint: password (RFC 6749 §4.3) and
 * refresh_token (§6) with rotation.
 *
 * - access token: ES256 JWT, `kid` header, claims sub (user id), sid
 *   (session id), role, iss, aud, iat, nbf, exp, jti; 15 min by default.
 * - refresh token: `<session id>.<256-bit secret>`, stored hashed; each use
 *   rotates it. A refresh token used a second time revokes its session.
 *
 * A wrong password, an unknown user and a disabled account fail identically,
 * each after exactly one argon2id verification.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { SessionRow, SessionStore, UserRow, UserStore } from '../../platform/auth/index.ts';
import type { TokenResponse } from '../../shared/index.ts';
import type { Audit, RequestMeta } from './audit.ts';
import { ALGORITHM, type KeyRingCache } from './keyring.ts';
import { prepareTimingEqualiser, verifyPassword } from './passwords.ts';
import { allPermissions, permissionsOf, roleHas, type Permission } from './permissions.ts';
import type { Sessions } from './sessions.ts';
import { oauthError } from './token-endpoint.ts';
import type { AuthFailureListener } from './tokens.ts';

export interface GrantDeps {
  users: UserStore;
  sessionStore: SessionStore;
  sessions: Sessions;
  keyring: KeyRingCache;
  audit: Audit;
  config: { issuer: string; audience: string; accessTtlSeconds: number };
  onFailure?: AuthFailureListener;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const invalidRefresh = () => oauthError('invalid_grant', 'The refresh token is invalid, expired or revoked');

export function createGrants(deps: GrantDeps) {
  const { users, sessionStore, sessions, config, audit } = deps;
  void prepareTimingEqualiser().catch(() => {});

  async function issueAccess(user: UserRow, sessionId: string): Promise<string> {
    const { signing } = await deps.keyring.current();
    return jwt.sign({ role: user.role, sid: sessionId }, signing.privatePem, {
      algorithm: ALGORITHM,
      keyid: signing.kid,
      subject: user.id,
      issuer: config.issuer,
      audience: config.audience,
      expiresIn: config.accessTtlSeconds,
      notBefore: 0,
      jwtid: randomUUID(),
    });
  }

  async function issueRefresh(sessionId: string): Promise<string> {
    const token = `${sessionId}.${randomBytes(32).toString('base64url')}`;
    await sessionStore.insertRefreshToken(sha256(token), sessionId);
    return token;
  }

  /** `sessionScope` '' means "whatever the user's role holds now", so role changes apply to live sessions. */
  async function tokenResponse(user: UserRow, sessionId: string, sessionScope: string): Promise<TokenResponse> {
    const scope = sessionScope || permissionsOf(user.role).join(' ');
    return {
      access_token: await issueAccess(user, sessionId),
      token_type: 'Bearer',
      expires_in: config.accessTtlSeconds,
      refresh_token: await issueRefresh(sessionId),
      scope,
    };
  }

  /** The session scope for a requested OAuth2 scope: permissions the role holds. No scope asked → ''. */
  function grantScope(user: UserRow, requested: string | undefined): string {
    if (!requested?.trim()) return '';
    const asked = [...new Set(requested.split(' ').filter(Boolean))];
    const bad = asked.filter((s) => !(allPermissions as string[]).includes(s) || !roleHas(user.role, s as Permission));
    if (bad.length) throw oauthError('invalid_scope', `scope not available: ${bad.join(' ')}`);
    return asked.join(' ');
  }

  return {
    /** RFC 6749 §4.3. Unknown user, wrong password and disabled account fail identically. */
    async password(input: { username: string; password: string; scope?: string }, meta: RequestMeta): Promise<TokenResponse> {
      const user = await users.byName(input.username);
      const ok = await verifyPassword(user && !user.disabled ? user.password_hash : undefined, input.password);
      if (!ok || !user) {
        deps.onFailure?.('password', 'invalid_grant');
        await audit({
          action: 'auth.login',
          outcome: 'failure',
          actorId: user?.id ?? null,
          actorName: input.username.slice(0, 200),
          ip: meta.ip,
          userAgent: meta.userAgent,
        });
        throw oauthError('invalid_grant', 'The username or password is incorrect');
      }
      const scope = grantScope(user, input.scope);
      const sessionId = await sessions.open(user, scope, meta);
      await audit({
        action: 'auth.login',
        outcome: 'success',
        actorId: user.id,
        actorName: user.username,
        ip: meta.ip,
        userAgent: meta.userAgent,
        targetType: 'session',
        targetId: sessionId,
      });
      return tokenResponse(user, sessionId, scope);
    },

    /**
     * RFC 6749 §6, rotating. A second use of any refresh token revokes its whole session. A `scope`
     * must stay within what the session was granted (else invalid_scope, and the token is not spent);
     * the session keeps its scope, which the answer's `scope` states (§3.3 lets the server issue
     * another scope than asked, saying so).
     */
    async refresh(token: string, meta: RequestMeta, requestedScope?: string): Promise<TokenResponse> {
      const claimedSession = token.split('.')[0] ?? '';
      const hash = sha256(token);
      if (requestedScope?.trim()) {
        const sid = await sessionStore.refreshTokenSession(hash);
        const session = sid === claimedSession ? await sessionStore.byId(sid) : undefined;
        const user = session ? await users.byId(session.user_id) : undefined;
        if (session && user) {
          const granted = new Set((session.scope || permissionsOf(user.role).join(' ')).split(' '));
          const beyond = [...new Set(requestedScope.split(' ').filter(Boolean))].filter((s) => !granted.has(s));
          if (beyond.length) throw oauthError('invalid_scope', `scope beyond what this session was granted: ${beyond.join(' ').slice(0, 200)}`);
        }
      }
      // The actor's name goes with its id whenever the session (and so the user) is known.
      const refused = async (reason: string, session?: SessionRow, user?: UserRow) => {
        deps.onFailure?.('refresh', reason);
        await audit({
          action: 'auth.refresh',
          outcome: 'failure',
          actorId: session?.user_id ?? null,
          actorName: user?.username ?? null,
          ip: meta.ip,
          userAgent: meta.userAgent,
          targetType: session ? 'session' : undefined,
          targetId: session?.id,
          details: { reason },
        });
        return invalidRefresh();
      };
      const usedFor = await sessionStore.consumeRefreshToken(hash);
      if (!usedFor) {
        const known = await sessionStore.refreshTokenSession(hash);
        if (!known) throw await refused('unknown');
        // A rotated token came back: it leaked (or the client is broken). Either way the family dies.
        await sessions.revoke(known, 'refresh token reuse');
        const s = await sessionStore.byId(known);
        const owner = s ? await users.byId(s.user_id) : undefined;
        deps.onFailure?.('refresh', 'reuse');
        await audit({
          action: 'auth.refresh_reuse',
          outcome: 'denied',
          actorId: s?.user_id ?? null,
          actorName: owner?.username ?? null,
          ip: meta.ip,
          userAgent: meta.userAgent,
          targetType: 'session',
          targetId: known,
        });
        throw invalidRefresh();
      }
      const session = await sessionStore.byId(usedFor);
      const user = session ? await users.byId(session.user_id) : undefined;
      if (!session || session.id !== claimedSession || session.revoked_at || session.expires_at < new Date() || !user || user.disabled) {
        throw await refused(session?.revoked_at ? 'revoked' : 'expired', session, user);
      }
      await sessionStore.touch(session.id, meta.ip ?? null);
      await audit({
        action: 'auth.refresh',
        outcome: 'success',
        actorId: user.id,
        actorName: user.username,
        ip: meta.ip,
        userAgent: meta.userAgent,
        targetType: 'session',
        targetId: session.id,
      });
      return tokenResponse(user, session.id, session.scope);
    },
  };
}

export type Grants = ReturnType<typeof createGrants>;
