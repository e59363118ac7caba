/**
 * The one error class a handler throws on purpose, and the translation of any
 * thrown value into a `JobError` (data) at the runtime's boundary.
 */
import { JobErrorCode, type JobError } from '../../shared/index.ts';

export class JobFailure extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
    opts: { cause?: unknown; details?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'JobFailure';
    this.details = opts.details;
  }
  readonly details: unknown;
}

const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function causeCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

export function toJobError(err: unknown): JobError {
  if (err instanceof JobFailure) return { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) };
  const message = err instanceof Error ? err.message : String(err);
  const code = causeCode(err);
  if (code && JobErrorCode.safeParse(code).success) return { code: code as JobErrorCode, message };
  if (code && networkCodes.has(code)) return { code: 'UPSTREAM_UNAVAILABLE', message: `${message} (${code})` };
  if (err instanceof TypeError && message === 'fetch failed') return { code: 'UPSTREAM_UNAVAILABLE', message };
  return { code: 'INTERNAL', message: withoutPaths(message) };
}

/**
 * An absolute file path (two segments or more, with any `:line:column`), not part of a URL: a library's
 * failure text can carry the machine's paths (a Rust panic's source location, a file Node could not open),
 * and a job's error is shown to its owner, who never sees file paths (docs/errors.md). The log keeps the
 * error whole.
 */
const filePath = /(?<![\w:/.~-])(?:\/[^\s/:'"()[\]]+){2,}(?::\d+)*/g;

function withoutPaths(message: string): string {
  return message.replace(filePath, '<path>');
}
