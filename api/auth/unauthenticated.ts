import { AppError } from '../domain/errors.ts';

/** A refused credential: 401 with RFC 6750's `WWW-Authenticate: Bearer … error="invalid_token"`. */
export function unauthenticated(description: string): AppError {
  return new AppError('UNAUTHENTICATED', {
    detail: description,
    headers: { 'WWW-Authenticate': `Bearer realm="parley", error="invalid_token", error_description="${description.replace(/"/g, "'")}"` },
  });
}
