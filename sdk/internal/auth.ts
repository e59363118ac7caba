/**
 * Credentials: what goes into `Authorization: Bearer …`, and how a rejected
 * access token is replaced.
 *
 * - A token or an API key is sent as it is; a 401 is final.
 * - `{ username, password }` signs in with the OAuth2 password grant on
 *   first use, refreshes before the access token expires and after a 401,
 *   and signs in again if the refresh token is refused.
 * - `{ refreshToken }` resumes a saved session (a browser tab that reloads).
 *
 * Refresh tokens rotate: each works once, and the server revokes the whole
 * session when a used one comes back. So refreshes are single-flight (every
 * caller waiting on a renewal shares it) and a refresh is never retried
 * blindly after a network failure: the server may have rotated already.
 */
import type { TokenResponse } from '../../shared/index.ts';
import { ParleyError } from '../errors.ts';

/** A signed-in session, as `onSession` reports it after every sign-in and refresh: persist it to resume later. */
export interface Session {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds at which the access token stops working. */
  expiresAt: number;
}

export type AuthOption =
  /** An access token or an API key (`pk_…`), sent as a bearer credential. */
  | string
  | { token: string }
  | { apiKey: string }
  | { username: string; password: string; scope?: string; onSession?: (s: Session | null) => void }
  | { refreshToken: string; accessToken?: string; expiresAt?: number; onSession?: (s: Session | null) => void };

export interface Credentials {
  /** The bearer for the next request (refreshing first when the access token is about to expire), or none. */
  token(signal?: AbortSignal): Promise<string | undefined>;
  /** After a 401 that used `rejected`: true when a different credential is ready to retry with. */
  renew(rejected: string | undefined, signal?: AbortSignal): Promise<boolean>;
  /** The current session, for password and refresh-token auth. */
  session(): Session | undefined;
  /** Forgets the session (after a logout). */
  clear(): void;
}

export type Grant = (form: Record<string, string>, signal?: AbortSignal) => Promise<TokenResponse>;

export function createCredentials(auth: AuthOption | undefined, grant: Grant): Credentials {
  if (auth === undefined) return staticCredentials(undefined);
  if (typeof auth === 'string') return staticCredentials(auth);
  if ('token' in auth) return staticCredentials(auth.token);
  if ('apiKey' in auth) return staticCredentials(auth.apiKey);
  return sessionCredentials(auth, grant);
}

function staticCredentials(token: string | undefined): Credentials {
  return { token: async () => token, renew: async () => false, session: () => undefined, clear: () => {} };
}

function sessionCredentials(auth: Extract<AuthOption, { onSession?: unknown }>, grant: Grant): Credentials {
  const password = 'password' in auth ? { username: auth.username, password: auth.password, scope: auth.scope } : undefined;
  let current: Session | undefined =
    'refreshToken' in auth
      ? { refreshToken: auth.refreshToken, accessToken: auth.accessToken ?? '', expiresAt: auth.accessToken ? (auth.expiresAt ?? Date.now() + 60_000) : 0 }
      : undefined;
  let lifetimeMs = 15 * 60_000;
  let inFlight: Promise<Session> | undefined;

  const adopt = (t: TokenResponse): Session => {
    lifetimeMs = t.expires_in * 1000;
    current = { accessToken: t.access_token, refreshToken: t.refresh_token, expiresAt: Date.now() + lifetimeMs };
    auth.onSession?.(current);
    return current;
  };

  async function obtain(signal?: AbortSignal): Promise<Session> {
    if (current?.refreshToken) {
      try {
        return adopt(await grant({ grant_type: 'refresh_token', refresh_token: current.refreshToken }, signal));
      } catch (err) {
        // A refused refresh token (used, expired, revoked) ends the session; anything else is passed on.
        if (!(err instanceof ParleyError && (err.code === 'INVALID_GRANT' || err.code === 'INVALID_REQUEST'))) throw err;
        current = undefined;
        auth.onSession?.(null);
        if (!password)
          throw new ParleyError({
            code: 'UNAUTHENTICATED',
            status: 401,
            detail: 'the session ended (its refresh token was refused): sign in again',
            cause: err,
          });
      }
    }
    if (!password) throw new ParleyError({ code: 'UNAUTHENTICATED', status: 401, detail: 'no session: sign in again' });
    return adopt(
      await grant(
        { grant_type: 'password', username: password.username, password: password.password, ...(password.scope ? { scope: password.scope } : {}) },
        signal,
      ),
    );
  }

  // Single flight: concurrent callers share one renewal, so a refresh token is never presented twice.
  const renewOnce = (signal?: AbortSignal) => (inFlight ??= obtain(signal).finally(() => (inFlight = undefined)));

  // Refresh ahead of expiry: with a third of the lifetime (at most 30 s) left.
  const stale = (s: Session) => s.expiresAt - Date.now() < Math.min(30_000, lifetimeMs / 3);

  return {
    async token(signal) {
      if (inFlight) return (await inFlight).accessToken;
      if (!current || !current.accessToken || stale(current)) return (await renewOnce(signal)).accessToken;
      return current.accessToken;
    },
    async renew(rejected, signal) {
      if (inFlight) return (await inFlight).accessToken !== rejected;
      // Someone else renewed since this request was sent: retry with theirs.
      if (current?.accessToken && current.accessToken !== rejected) return true;
      await renewOnce(signal);
      return true;
    },
    session: () => current,
    clear() {
      current = undefined;
      auth.onSession?.(null);
    },
  };
}
