/**
 * Stable error codes and the wire shapes errors take.
 *
 * Errors cross HTTP, queues, processes and threads as data (`JobError`), never
 * as classes: a class sent through worker_threads or Redis arrives as a plain
 * object and loses its type. `AppError` exists only inside one process.
 */
import { z } from 'zod';

/** Codes an HTTP request can fail with. The API's error middleware maps each to a status. */
export const ApiErrorCode = z.enum([
  /** The body, query or path did not match the route's schema; `errors` lists the field paths. */
  'VALIDATION_FAILED',
  /** The body could not be parsed (bad JSON, too deep). */
  'MALFORMED_BODY',
  /** The body is larger than the configured limit. */
  'PAYLOAD_TOO_LARGE',
  /** The Content-Type is not one the route accepts. */
  'UNSUPPORTED_MEDIA_TYPE',
  /** The request's Accept header rules out the only media type the route answers with (an event stream asked for as JSON). */
  'NOT_ACCEPTABLE',
  /** The request line and headers together are larger than the server takes (Node's max header size, 16 KiB by default). */
  'HEADERS_TOO_LARGE',
  /** The request itself could not be parsed as HTTP/1.1 (a bad request line, a header without a colon, Content-Length with Transfer-Encoding); answered before any route. */
  'MALFORMED_REQUEST',
  /** The request line, headers or body did not arrive within the server's time (408); answered before any route. */
  'CLIENT_TIMEOUT',
  /** No such route. */
  'ROUTE_NOT_FOUND',
  /** The path exists, but not with this method; `Allow` lists the ones it takes. */
  'METHOD_NOT_ALLOWED',
  /** The job does not exist, or the caller may not see it. */
  'JOB_NOT_FOUND',
  /** The resource does not exist, or the caller may not see it. */
  'NOT_FOUND',
  /** The same idempotency key was used with a different request body. */
  'IDEMPOTENCY_CONFLICT',
  /** The operation does not apply to the job's current state (e.g. retrying a running job). */
  'INVALID_STATE',
  /** No credentials, or credentials that are invalid, expired or revoked. */
  'UNAUTHENTICATED',
  /** OAuth2 token endpoint: a parameter is missing or malformed (RFC 6749 §5.2 invalid_request). */
  'INVALID_REQUEST',
  /** OAuth2: wrong credentials, or a refresh token that is invalid, expired, revoked or reused (invalid_grant). */
  'INVALID_GRANT',
  /** OAuth2: grant_type is neither password nor refresh_token. */
  'UNSUPPORTED_GRANT_TYPE',
  /** Authenticated, but the role lacks the permission, or a configured policy forbids the action (a model pull from a registry host not on the allow-list). */
  'FORBIDDEN',
  /** A rate limit or quota was hit; see Retry-After. */
  'RATE_LIMITED',
  /** A configured cap (model, num_predict, num_ctx, prompt size, concurrency) was exceeded. */
  'LIMIT_EXCEEDED',
  /** An uploaded archive is not a .tar.gz, or holds an entry that would land outside its tree (absolute path, "..", a link out). */
  'ARCHIVE_REJECTED',
  /** The token budget cannot cover the request. */
  'BUDGET_EXHAUSTED',
  /** The server could not answer within its request timeout (503 with Retry-After). The outcome is unknown: the work may still be carried out. */
  'REQUEST_TIMEOUT',
  /** The queue or another backing service could not take the request; nothing was accepted. Retry after Retry-After. */
  'SERVICE_UNAVAILABLE',
  /** Redis is unreachable or not answering; nothing was accepted. Retry after Retry-After. */
  'REDIS_UNAVAILABLE',
  /** Postgres is unreachable or not answering; nothing was accepted. Retry after Retry-After. */
  'POSTGRES_UNAVAILABLE',
  /** The MongoDB-wire document store is unreachable or not answering. Retry after Retry-After. */
  'MONGODB_UNAVAILABLE',
  /** A bug. The response carries a requestId to find the log line; never a stack trace. */
  'INTERNAL',
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCode>;

/** Codes a job can end with. Each has exactly one retry decision (see `isRetryable`). */
export const JobErrorCode = z.enum([
  /** The payload failed validation at pick-up, or has an unknown version. Never retried. */
  'INVALID_PAYLOAD',
  /** Ollama (or another upstream) refused the connection, reset it or answered 5xx before any output. */
  'UPSTREAM_UNAVAILABLE',
  /** The upstream did not answer within the connect, first-token or idle timeout. */
  'UPSTREAM_TIMEOUT',
  /** The upstream rejected the request (4xx), e.g. an unknown model. Never retried. */
  'UPSTREAM_REJECTED',
  /** The job was cancelled by a user or operator. */
  'CANCELLED',
  /** The token budget ran out during the job. */
  'BUDGET_EXHAUSTED',
  /** The worker holding the job died or stalled too often. */
  'STALLED',
  /** The handler reported a deterministic failure. Never retried. */
  'HANDLER_FAILED',
  /** The result is larger than its kind's bound (PARLEY_JOB_LIMITS `resultBytes`): refused, not kept. Never retried. */
  'RESULT_TOO_LARGE',
  /** An unexpected error; treated as transient. */
  'INTERNAL',
]);
export type JobErrorCode = z.infer<typeof JobErrorCode>;

/** An error as it travels between processes and threads. */
export const JobError = z.object({
  code: JobErrorCode,
  message: z.string(),
  details: z.unknown().optional(),
});
export type JobError = z.infer<typeof JobError>;

/** The one retry decision. Exhaustive: a new code without a decision is a type error. */
export function isRetryable(code: JobErrorCode): boolean {
  switch (code) {
    case 'UPSTREAM_UNAVAILABLE':
    case 'UPSTREAM_TIMEOUT':
    case 'STALLED':
    case 'INTERNAL':
      return true;
    case 'INVALID_PAYLOAD':
    case 'UPSTREAM_REJECTED':
    case 'CANCELLED':
    case 'BUDGET_EXHAUSTED':
    case 'HANDLER_FAILED':
    case 'RESULT_TOO_LARGE':
      return false;
  }
}

/** RFC 9457 problem details, with our stable `code` and the request id. */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  code: ApiErrorCode,
  requestId: z.string().optional(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  /** LIMIT_EXCEEDED: the cap that refused the request. */
  cap: z.string().optional(),
  /**
   * LIMIT_EXCEEDED: the cap's value, a number for a numeric cap, a comma-separated list for a list of allowed
   * values (models, priorities). BUDGET_EXHAUSTED: the budget's tokens per period. Quantities are JSON numbers.
   */
  limit: z.union([z.number(), z.string()]).optional(),
  /** BUDGET_EXHAUSTED: tokens used or reserved in the period. */
  used: z.number().optional(),
  /** BUDGET_EXHAUSTED: the tokens this request would reserve. */
  requested: z.number().optional(),
});
export type Problem = z.infer<typeof Problem>;
