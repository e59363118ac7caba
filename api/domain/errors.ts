import type { ApiErrorCode } from '../../shared/index.ts';

/**
 * The API's one error class: a stable code, a detail and the fields at fault.
 * Thrown by domain functions and middleware; it knows nothing of HTTP. The
 * HTTP layer maps its code to a status (api/http/status.ts) and writes
 * problem+json (written by api/http/errors.ts). Never crosses a process.
 */
export class AppError extends Error {
  readonly code: ApiErrorCode;
  readonly detail: string | undefined;
  readonly errors: { path: string; message: string }[] | undefined;
  readonly headers: Record<string, string> | undefined;
  /**
   * Extension members of the problem body (api/http/errors.ts writes them): a cap's `cap` and `limit`, a
   * budget's `limit`, `used` and `requested`, …; and OAuth2's `error` and `error_description`, for the token
   * endpoint's §5.2 answers. A quantity is a JSON number, never a numeral in a string.
   */
  readonly extra: Record<string, string | number> | undefined;

  constructor(
    code: ApiErrorCode,
    opts: {
      detail?: string;
      errors?: { path: string; message: string }[];
      cause?: unknown;
      headers?: Record<string, string>;
      extra?: Record<string, string | number>;
    } = {},
  ) {
    super(opts.detail ?? code, { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.detail = opts.detail;
    this.errors = opts.errors;
    this.headers = opts.headers;
    this.extra = opts.extra;
  }
}
