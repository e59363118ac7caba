/**
 * Credential verification: a Bearer value is an access token (ES256 JWT) or
 * an API key (`pk_…`). Plain functions; the HTTP authenticator, Socket.IO's
 * handshake, the queue board and the periodic recheck of long-lived
 * connections all call them.
 *
 * An access token is accepted when, in this order: its `kid` names a key in
 * the ring; the signature verifies under the allow-list ['ES256']; `iss`,
 * `aud`, `nbf` and `exp` hold (5 s tolerance) and `exp` is present; its
 * session (`sid`) is not revoked (Redis first), belongs to `sub` and has not
 * expired; the user exists and is enabled.
 */
import jwt from 'jsonwebtoken';
import { AppError } from '../domain/errors.ts';
import type { ApiKeys } from './api-keys.ts';
import { ALGORITHM, type KeyRingCache } from './keyring.ts';
import { actorOf, type Actor, type Permission } from './permissions.ts';
import type { Sessions } from './sessions.ts';
import { unauthenticated } from './unauthenticated.ts';

/** bearer: an access token or API key was refused; password: a failed login; refresh: a refused or reused refresh token. */
export type AuthFailureKind = 'bearer' | 'password' | 'refresh';
/** Hears every refused credential (metrics). `reason` is one of a small fixed set of slugs. */
export type AuthFailureListener = (kind: AuthFailureKind, reason: string) => void;

export const failureSlug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_');

export interface TokenDeps {
  keyring: KeyRingCache;
  sessions: Sessions;
  apiKeys: ApiKeys;
  config: { issuer: string; audience: string };
  onFailure?: AuthFailureListener;
  /** The clock remembered tokens' expiry is checked against, in ms. @defaultValue Date.now */
  now?: () => number;
}

const CLOCK_TOLERANCE_S = 5;
/** Verified access tokens remembered per process (an ES256 verification is most of an authenticated request's CPU). */
const VERIFIED_MAX = 10_000;

export function createTokenVerifier(deps: TokenDeps) {
  const { sessions, apiKeys, config } = deps;
  /**
   * Tokens whose signature verified, with the key it verified under and their claims. A token is
   * immutable, so its signature, issuer and audience never need checking again while the same key is
   * in the ring; expiry and not-before are checked at every use, and the session behind it (revocation,
   * expiry, the account) is resolved on every request as before.
   */
  const verified = new Map<string, { key: Awaited<ReturnType<KeyRingCache['verifyingKey']>>; claims: jwt.JwtPayload }>();
  const remember = (token: string, entry: { key: Awaited<ReturnType<KeyRingCache['verifyingKey']>>; claims: jwt.JwtPayload }) => {
    verified.set(token, entry);
    // Map keeps insertion order: drop the oldest.
    while (verified.size > VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  };

  /** The actor of a live session, as claimed for user `uid`; throws UNAUTHENTICATED otherwise. */
  async function sessionActor(sid: string, uid: string): Promise<Actor> {
    const { revoked, session, user } = await sessions.resolve(sid, uid);
    if (revoked || !session || session.revoked || session.userId !== uid) throw unauthenticated('session revoked');
    if (session.expiresAt < new Date()) throw unauthenticated('session expired');
    if (!user || user.disabled) throw unauthenticated('account disabled');
    const scopes = session.scope ? (session.scope.split(' ') as Permission[]) : undefined;
    return actorOf(user, { sessionId: sid, scopes });
  }

  async function verifyAccessToken(token: string): Promise<{ actor: Actor; expiresAt: number }> {
    const decoded = jwt.decode(token, { complete: true });
    if (!decoded || typeof decoded.payload === 'string') throw unauthenticated('malformed token');
    const kid = decoded.header.kid;
    if (typeof kid !== 'string' || !kid) throw unauthenticated('unknown signing key');
    const key = await deps.keyring.verifyingKey(kid);
    if (!key) throw unauthenticated('unknown signing key');
    let claims: jwt.JwtPayload;
    const seen = verified.get(token);
    if (seen && seen.key === key) {
      // The signature, issuer and audience were checked once under this very key; the times are checked at every use.
      const now = (deps.now ?? Date.now)() / 1000;
      if (typeof seen.claims.exp === 'number' && now > seen.claims.exp + CLOCK_TOLERANCE_S) {
        verified.delete(token);
        throw unauthenticated('token expired');
      }
      if (typeof seen.claims.nbf === 'number' && now < seen.claims.nbf - CLOCK_TOLERANCE_S) throw unauthenticated('token not yet valid');
      claims = seen.claims;
    } else {
      try {
        claims = jwt.verify(token, key, {
          algorithms: [ALGORITHM],
          issuer: config.issuer,
          audience: config.audience,
          clockTolerance: CLOCK_TOLERANCE_S,
        }) as jwt.JwtPayload;
      } catch (err) {
        throw unauthenticated(
          err instanceof jwt.TokenExpiredError ? 'token expired' : err instanceof jwt.NotBeforeError ? 'token not yet valid' : 'invalid token',
        );
      }
      remember(token, { key, claims });
    }
    if (typeof claims.exp !== 'number') throw unauthenticated('token has no expiry');
    if (typeof claims.sub !== 'string' || typeof claims.sid !== 'string') throw unauthenticated('invalid token');
    return { actor: await sessionActor(claims.sid, claims.sub), expiresAt: claims.exp * 1000 };
  }

  /** An access token or API key → its actor (and, for a token, when it expires); UNAUTHENTICATED otherwise. */
  async function verify(token: string): Promise<{ actor: Actor; expiresAt?: number }> {
    if (token.startsWith('pk_')) return { actor: await apiKeys.verify(token) };
    return verifyAccessToken(token);
  }

  return {
    verify,
    verifyAccessToken,
    sessionActor,

    /** `verify`, counting every refusal (metrics). */
    async authenticate(token: string): Promise<{ actor: Actor; expiresAt?: number }> {
      try {
        return await verify(token);
      } catch (err) {
        deps.onFailure?.('bearer', failureSlug(err instanceof AppError ? (err.detail ?? err.code) : 'error'));
        throw err;
      }
    },

    /**
     * True while the credential behind `actor` still stands: session (or key) not revoked or expired,
     * account enabled, role unchanged. Long-lived connections call it periodically; a role change
     * ends them too, since their authorisation was decided with the old role.
     */
    async stillValid(actor: Actor): Promise<boolean> {
      if (actor.sessionId) {
        const { revoked, session, user } = await sessions.resolve(actor.sessionId, actor.userId);
        return Boolean(
          !revoked &&
          session &&
          !session.revoked &&
          session.userId === actor.userId &&
          session.expiresAt > new Date() &&
          user &&
          !user.disabled &&
          user.role === actor.role,
        );
      }
      if (actor.apiKeyId) return apiKeys.stillValid(actor);
      return false;
    },
  };
}

export type TokenVerifier = ReturnType<typeof createTokenVerifier>;
