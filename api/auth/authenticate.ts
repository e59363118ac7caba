import type { Request } from 'express';
import { AppError } from '../domain/errors.ts';
import type { Authenticate } from '../http/mount.ts';
import type { Actor } from './permissions.ts';
import type { TokenVerifier } from './tokens.ts';

/**
 * Bearer credentials from the Authorization header: an access token or an API
 * key. None → anonymous (undefined); anything unusable → UNAUTHENTICATED.
 *
 * The result is memoised per request and header value: the rate limiter, the
 * route and the SSE handler may all ask, and one request must cost one
 * verification (and count at most one failure).
 *
 * `onFailure` hears failures the verifier never sees (a malformed header);
 * the verifier reports its own refusals through its `onFailure`.
 */
export function bearerAuthenticator(tokens: TokenVerifier, onFailure?: (reason: string) => void): Authenticate {
  const seen = new WeakMap<Request, { header: string | undefined; result: Promise<Actor | undefined> }>();
  const resolve = async (header: string | undefined): Promise<Actor | undefined> => {
    if (!header) return undefined;
    const m = /^Bearer\s+([^\s]+)$/i.exec(header);
    if (!m) {
      onFailure?.('malformed_header');
      throw new AppError('UNAUTHENTICATED', {
        detail: 'Use "Authorization: Bearer <token>"',
        headers: { 'WWW-Authenticate': 'Bearer realm="parley", error="invalid_request"' },
      });
    }
    return (await tokens.authenticate(m[1]!)).actor;
  };
  return (req: Request) => {
    const header = req.get('authorization');
    const memo = seen.get(req);
    if (memo && memo.header === header) return memo.result;
    const result = resolve(header);
    seen.set(req, { header, result });
    return result;
  };
}
