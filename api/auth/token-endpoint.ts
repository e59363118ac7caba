/**
 * HTTP rules of the OAuth2 token endpoint (RFC 6749 §3.2, §5.1, §5.2) that
 * hold before the route runs, so they also cover answers the route never
 * gives (401 for a bad Authorization header, 429 from the rate limiters):
 *
 * - every response, success or error, is `Cache-Control: no-store` (and
 *   `Pragma: no-cache` for HTTP/1.0 caches);
 * - every error is `application/json` with `error` and `error_description`
 *   (§5.2), not problem+json: `res.locals.errorStyle = 'oauth2'` tells
 *   api/http/errors.ts to render it so;
 * - the body must be application/x-www-form-urlencoded; anything else is
 *   `invalid_request`, not a generic 415.
 *
 * Mounted at /v1/auth/token ahead of the body parsers (a body they refuse
 * is answered in the §5.2 style too) and the rate limiters.
 */
import type { RequestHandler } from 'express';
import type { OAuthError } from '../../shared/index.ts';
import { AppError } from '../domain/errors.ts';
import { sendProblem } from '../http/errors.ts';

type GrantError = Extract<OAuthError['error'], 'invalid_request' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope'>;

/** A §5.2 error with its description; `code` is ours (invalid_scope shares INVALID_REQUEST). */
export function oauthError(error: GrantError, description: string): AppError {
  const code = error === 'invalid_grant' ? 'INVALID_GRANT' : error === 'unsupported_grant_type' ? 'UNSUPPORTED_GRANT_TYPE' : 'INVALID_REQUEST';
  return new AppError(code, { detail: description, extra: { error, error_description: description } });
}

export const tokenEndpointGuard: RequestHandler = (req, res, next) => {
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
  res.locals.errorStyle = 'oauth2';
  if (req.method === 'POST' && !req.is('application/x-www-form-urlencoded')) {
    return sendProblem(
      res,
      oauthError('invalid_request', 'The token request must be application/x-www-form-urlencoded'),
      res.locals.requestId as string | undefined,
      req.originalUrl.split('?')[0],
    );
  }
  next();
};
