/**
 * HTTP rules of the OAuth2 token endpoint (RFC 6749 §3.2, §5.1, §5.2) that
 * hold before the route runs, so they also cover answers the route never
 * gives (401 for a bad Authorization header, 429 from the rate limiters):
 *
 * - every response, success or error, is `Cache-Control: no-store` (and
 *   `Pragma: no-cache` for HTTP/1.0 caches);
 * - the body must be application/x-www-form-urlencoded; anything else is
 *   `invalid_request` in the §5.2 shape, not a generic 415.
 *
 * Mounted at /v1/auth/token ahead of the rate limiters.
 */
import type { RequestHandler } from 'express';
import { sendProblem } from '../http/errors.ts';
import { oauthError } from './service.ts';

export const tokenEndpointGuard: RequestHandler = (req, res, next) => {
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
  if (req.method === 'POST' && !req.is('application/x-www-form-urlencoded')) {
    return sendProblem(res, oauthError('invalid_request', 'The token request must be application/x-www-form-urlencoded'), res.locals.requestId as string | undefined, req.originalUrl.split('?')[0]);
  }
  next();
};
