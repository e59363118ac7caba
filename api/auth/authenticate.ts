import type { Request } from 'express';
import { AppError } from '../http/app-error.ts';
import type { Authenticate } from '../http/mount.ts';
import type { AuthService } from './service.ts';

/** Bearer credentials from the Authorization header: an access token or an API key. None → anonymous. */
export function bearerAuthenticator(auth: AuthService, onFailure?: (reason: string) => void): Authenticate {
  return async (req: Request) => {
    const header = req.get('authorization');
    if (!header) return undefined;
    const m = /^Bearer\s+([^\s]+)$/i.exec(header);
    if (!m) {
      onFailure?.('malformed_header');
      throw new AppError('UNAUTHENTICATED', { detail: 'Use "Authorization: Bearer <token>"', headers: { 'WWW-Authenticate': 'Bearer realm="parley", error="invalid_request"' } });
    }
    try {
      return (await auth.authenticateToken(m[1]!)).actor;
    } catch (err) {
      onFailure?.(err instanceof AppError ? (err.detail ?? 'invalid') : 'error');
      throw err;
    }
  };
}
