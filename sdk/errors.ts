/**
 * One error class for everything the SDK throws: an RFC 9457 problem from
 * the API, a job that ended failed or cancelled, a network failure, an abort.
 * The problem+json members (`status`, `code`, `detail`, `requestId`, `errors`)
 * are carried as they came; `code` is stable, so branch on it (or on the
 * helpers below), never on `message`.
 */
import type { ApiErrorCode, JobError, JobErrorCode, Problem } from '../shared/index.ts';

/**
 * Codes the SDK adds for failures that never reached (or never came back from) the API:
 * `NETWORK_ERROR` (the request or stream failed in transit, after any retries),
 * `ABORTED` (the caller's AbortSignal fired), `UNEXPECTED_RESPONSE` (an answer that is not ours, e.g. a proxy's HTML).
 */
export type ClientErrorCode = 'NETWORK_ERROR' | 'ABORTED' | 'UNEXPECTED_RESPONSE';

/** Every code a ParleyError can carry: the API's, a job's (when a run or stream ends badly) and the client's own. */
export type ParleyErrorCode = ApiErrorCode | JobErrorCode | ClientErrorCode;

/** A problem+json body: the members every problem has, and whatever extension members the route added. */
export type ProblemBody = Problem & { [member: string]: unknown };

export interface ParleyErrorInit {
  code: ParleyErrorCode;
  /** The HTTP status; 0 when no response came back. */
  status: number;
  title?: string;
  detail?: string;
  requestId?: string;
  errors?: { path: string; message: string }[];
  /** The problem+json body as received, when there was one, extension members included (an archive's `reason`, a cap's `limit`). */
  problem?: ProblemBody;
  /** Set when a job ended failed or cancelled: its id, final state and error. */
  job?: { id: string; state: 'failed' | 'cancelled'; error?: JobError };
  /** Seconds to wait before trying again (from Retry-After), when the server said so. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class ParleyError<C extends ParleyErrorCode = ParleyErrorCode> extends Error {
  readonly code: C;
  readonly status: number;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  readonly requestId: string | undefined;
  readonly errors: { path: string; message: string }[] | undefined;
  readonly problem: ProblemBody | undefined;
  readonly job: ParleyErrorInit['job'];
  readonly retryAfterSeconds: number | undefined;

  constructor(init: ParleyErrorInit & { code: C }) {
    super(init.detail ? `${init.code}: ${init.detail}` : init.code, { cause: init.cause });
    this.name = 'ParleyError';
    this.code = init.code;
    this.status = init.status;
    this.title = init.title;
    this.detail = init.detail;
    this.requestId = init.requestId;
    this.errors = init.errors;
    this.problem = init.problem;
    this.job = init.job;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }

  /** Narrows to one or more codes: `if (err.is('RATE_LIMITED')) wait(err.retryAfterSeconds)`. */
  is<K extends ParleyErrorCode>(...codes: K[]): this is ParleyError<K> {
    return (codes as ParleyErrorCode[]).includes(this.code);
  }
}

/** True for any ParleyError, or (with codes) for one carrying one of them. */
export function isParleyError<K extends ParleyErrorCode = ParleyErrorCode>(err: unknown, ...codes: K[]): err is ParleyError<K> {
  return err instanceof ParleyError && (codes.length === 0 || (codes as ParleyErrorCode[]).includes(err.code));
}

/** 401: no, invalid, expired or revoked credentials (after the SDK's own refresh attempt). */
export const isUnauthenticated = (err: unknown): err is ParleyError<'UNAUTHENTICATED'> => isParleyError(err, 'UNAUTHENTICATED');
/** 403: authenticated, but not allowed. */
export const isForbidden = (err: unknown): err is ParleyError<'FORBIDDEN'> => isParleyError(err, 'FORBIDDEN');
/** 404 of any kind: a missing resource, or one you may not see. */
export const isNotFound = (err: unknown): err is ParleyError<'NOT_FOUND' | 'JOB_NOT_FOUND' | 'ROUTE_NOT_FOUND'> =>
  isParleyError(err, 'NOT_FOUND', 'JOB_NOT_FOUND', 'ROUTE_NOT_FOUND');
/** 400 with field errors in `err.errors`. */
export const isValidationError = (err: unknown): err is ParleyError<'VALIDATION_FAILED'> => isParleyError(err, 'VALIDATION_FAILED');
/** 429 from a rate limit (not a budget): `retryAfterSeconds` says when to come back. */
export const isRateLimited = (err: unknown): err is ParleyError<'RATE_LIMITED'> => isParleyError(err, 'RATE_LIMITED');
/** The caller aborted. */
export const isAborted = (err: unknown): err is ParleyError<'ABORTED'> => isParleyError(err, 'ABORTED');
/** A job (run or stream) ended cancelled. */
export const isCancelled = (err: unknown): err is ParleyError<'CANCELLED'> => isParleyError(err, 'CANCELLED');

/** The ParleyError for a job that ended failed or cancelled. */
export function jobFailure(id: string, state: 'failed' | 'cancelled', error: JobError | undefined): ParleyError {
  const code: JobErrorCode = error?.code ?? (state === 'cancelled' ? 'CANCELLED' : 'INTERNAL');
  return new ParleyError({ code, status: 0, detail: error?.message ?? `job ${id} ${state}`, job: { id, state, ...(error ? { error } : {}) } });
}

export function abortError(signal: AbortSignal | undefined): ParleyError<'ABORTED'> {
  return new ParleyError({ code: 'ABORTED', status: 0, detail: 'the operation was aborted', cause: signal?.reason });
}
