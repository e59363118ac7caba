import type { ApiErrorCode } from '../../shared/index.ts';

/** The one map from error code to HTTP status. Exhaustive over the codes. */
export function statusOf(code: ApiErrorCode): number {
  switch (code) {
    case 'VALIDATION_FAILED':
    case 'MALFORMED_BODY':
    case 'INVALID_REQUEST':
    case 'INVALID_GRANT':
    case 'UNSUPPORTED_GRANT_TYPE':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'ROUTE_NOT_FOUND':
    case 'JOB_NOT_FOUND':
    case 'NOT_FOUND':
      return 404;
    case 'METHOD_NOT_ALLOWED':
      return 405;
    case 'IDEMPOTENCY_CONFLICT':
    case 'INVALID_STATE':
      return 409;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'NOT_ACCEPTABLE':
      return 406;
    case 'LIMIT_EXCEEDED':
    case 'ARCHIVE_REJECTED':
      return 422;
    case 'HEADERS_TOO_LARGE':
      return 431;
    case 'MALFORMED_REQUEST':
      return 400;
    case 'CLIENT_TIMEOUT':
      return 408;
    case 'BUDGET_EXHAUSTED':
    case 'RATE_LIMITED':
      return 429;
    case 'SERVICE_UNAVAILABLE':
    case 'REDIS_UNAVAILABLE':
    case 'POSTGRES_UNAVAILABLE':
    case 'MONGODB_UNAVAILABLE':
    case 'REQUEST_TIMEOUT':
      return 503;
    case 'INTERNAL':
      return 500;
  }
}

const titles: Record<ApiErrorCode, string> = {
  VALIDATION_FAILED: 'The request is not valid',
  MALFORMED_BODY: 'The request body could not be parsed',
  PAYLOAD_TOO_LARGE: 'The request body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported content type',
  NOT_ACCEPTABLE: 'No acceptable representation',
  HEADERS_TOO_LARGE: 'The request line and headers are too large',
  MALFORMED_REQUEST: 'The request is not valid HTTP/1.1',
  CLIENT_TIMEOUT: 'The request did not arrive in time',
  ROUTE_NOT_FOUND: 'No such route',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  JOB_NOT_FOUND: 'Job not found',
  NOT_FOUND: 'Not found',
  IDEMPOTENCY_CONFLICT: 'Idempotency key reused with a different request',
  INVALID_STATE: 'Not allowed in the current state',
  UNAUTHENTICATED: 'Authentication required',
  INVALID_REQUEST: 'The token request is malformed',
  INVALID_GRANT: 'The grant is invalid',
  UNSUPPORTED_GRANT_TYPE: 'Unsupported grant type',
  FORBIDDEN: 'Not permitted',
  RATE_LIMITED: 'Too many requests',
  LIMIT_EXCEEDED: 'A configured limit was exceeded',
  ARCHIVE_REJECTED: 'The archive was rejected',
  BUDGET_EXHAUSTED: 'Token budget exhausted',
  REQUEST_TIMEOUT: 'The request took too long',
  SERVICE_UNAVAILABLE: 'A backing service is unavailable',
  REDIS_UNAVAILABLE: 'Redis is unavailable',
  POSTGRES_UNAVAILABLE: 'Postgres is unavailable',
  MONGODB_UNAVAILABLE: 'The document store is unavailable',
  INTERNAL: 'Internal error',
};

export function titleOf(code: ApiErrorCode): string {
  return titles[code];
}
