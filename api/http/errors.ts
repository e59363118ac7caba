/**
 * Error middleware: everything becomes RFC 9457 problem+json with a stable
 * `code` and the request id. No stack traces or internal paths ever leave.
 *
 * One exception: a response marked `res.locals.errorStyle = 'oauth2'` (the
 * token endpoint, api/auth/token-endpoint.ts) carries its errors as RFC 6749
 * §5.2 has them, `application/json` with `error` and `error_description`,
 * plus our `code`, `status` and `requestId`.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { dependencyDown, type Dependency } from '../../platform/connections/index.ts';
import { JobFailure } from '../../platform/jobs/index.ts';
import type { Logger } from '../../platform/observability/index.ts';
import type { OAuthError, Problem } from '../../shared/index.ts';
import { AppError } from '../domain/errors.ts';
import { statusOf, titleOf } from './status.ts';

export function problemOf(err: AppError, requestId: string | undefined, instance?: string): Problem {
  return {
    type: `https://parley.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title: titleOf(err.code),
    status: statusOf(err.code),
    ...(err.detail ? { detail: err.detail } : {}),
    ...(instance ? { instance } : {}),
    code: err.code,
    ...(requestId ? { requestId } : {}),
    ...(err.errors ? { errors: err.errors } : {}),
    // Members a code adds (a cap's name and limit, a budget's period); OAuth's own stay in the token endpoint's answers.
    ...Object.fromEntries(Object.entries(err.extra ?? {}).filter(([k]) => k !== 'error' && k !== 'error_description')),
  };
}

const outageCodes = { redis: 'REDIS_UNAVAILABLE', postgres: 'POSTGRES_UNAVAILABLE', mongodb: 'MONGODB_UNAVAILABLE' } as const;

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_S = 2;

/** A backing service's outage as the API's answer: 503, Retry-After, and the code that names the service. */
export function outage(dep: Dependency, cause?: unknown): AppError {
  return new AppError(outageCodes[dep], {
    detail: `${dep === 'mongodb' ? 'The document store' : dep === 'redis' ? 'Redis' : 'Postgres'} is not answering; nothing was changed. Retry in a few seconds.`,
    cause,
    headers: { 'Retry-After': String(RETRY_AFTER_S) },
  });
}

/** Maps body-parser's and other libraries' errors onto our codes. */
function normalise(err: unknown, ports: Partial<Record<Dependency, number>>): AppError {
  if (err instanceof AppError) {
    // A refusal that wraps an outage (the queue could not take the job because Redis is down) names the service.
    if (err.code === 'SERVICE_UNAVAILABLE' && err.cause) {
      const dep = dependencyDown(err.cause, ports);
      if (dep) return outage(dep, err);
    }
    return err;
  }
  const dep = dependencyDown(err, ports);
  if (dep) return outage(dep, err);
  // An upstream failure met on the request path (a query embedding when the embedding model is missing or
  // Ollama is down): the service cannot answer now; never the client's fault and never a 500.
  if (err instanceof JobFailure && err.code.startsWith('UPSTREAM_')) {
    return new AppError('SERVICE_UNAVAILABLE', {
      detail: `Ollama could not answer: ${err.message}`,
      cause: err,
      headers: { 'Retry-After': String(RETRY_AFTER_S) },
    });
  }
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE', { cause: err });
  if (e?.type === 'entity.parse.failed') return new AppError('MALFORMED_BODY', { detail: parseFailure((err as { body?: unknown }).body), cause: err });
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new AppError('UNSUPPORTED_MEDIA_TYPE', { cause: err });
  if (e?.type === 'entity.encoding.invalid') return new AppError('MALFORMED_BODY', { detail: 'The body is not valid UTF-8', cause: err });
  if (e?.type === 'request.aborted') return new AppError('MALFORMED_BODY', { detail: 'The request was aborted', cause: err });
  // The router could not decode a path parameter (`/v1/jobs/%zz`): the URL is at fault, not a body.
  if (err instanceof URIError)
    return new AppError('VALIDATION_FAILED', {
      detail: 'The URL holds a malformed percent-escape',
      errors: [{ path: 'params', message: 'not valid percent-encoding' }],
      cause: err,
    });
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return new AppError('MALFORMED_BODY', { cause: err });
  return new AppError('INTERNAL', { cause: err });
}

/**
 * The §5.2 `error` for an AppError: the one it was raised with, else the nearest registered code
 * (401 invalid_client: §5.2's code for failed client authentication; 429 slow_down: RFC 8628's
 * "retry more slowly"; 5xx temporarily_unavailable / server_error; any other 4xx invalid_request).
 */
function oauthCodeOf(err: AppError): OAuthError['error'] {
  const raised = err.extra?.error as OAuthError['error'] | undefined;
  if (raised) return raised;
  const status = statusOf(err.code);
  if (status === 401) return 'invalid_client';
  if (status === 429) return 'slow_down';
  if (status === 503) return 'temporarily_unavailable';
  if (status >= 500) return 'server_error';
  return 'invalid_request';
}

export function oauthErrorOf(err: AppError, requestId: string | undefined): OAuthError {
  const fields = err.errors?.map((e) => `${e.path}: ${e.message}`).join('; ');
  const description = [err.detail ?? titleOf(err.code), fields].filter(Boolean).join(' — ');
  return { error: oauthCodeOf(err), error_description: description, status: statusOf(err.code), code: err.code, ...(requestId ? { requestId } : {}) };
}

/**
 * A problem written straight to a connection no response object owns (what Node's parser refused, an
 * upgrade request answered by hand), then closed. `status` defaults to the code's; the body states the same.
 */
export function endWithProblem(socket: Duplex, err: AppError, status = statusOf(err.code)): void {
  const body = JSON.stringify({ ...problemOf(err, undefined), status });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function sendProblem(res: Parameters<RequestHandler>[1], err: AppError, requestId: string | undefined, instance?: string): void {
  if (err.headers) res.set(err.headers);
  if (statusOf(err.code) === 503 && !res.get('Retry-After')) res.set('Retry-After', String(RETRY_AFTER_S));
  if (err.code === 'UNAUTHENTICATED' && !res.get('WWW-Authenticate')) res.set('WWW-Authenticate', 'Bearer');
  res.locals.errorCode = err.code;
  if (res.locals.errorStyle === 'oauth2') {
    const body = oauthErrorOf(err, requestId);
    res.status(body.status).type('application/json').send(JSON.stringify(body));
    return;
  }
  const body = problemOf(err, requestId, instance);
  res.status(body.status).type('application/problem+json').send(JSON.stringify(body));
}

/** An error's message and its causes', outermost first, so a refusal's log names what failed underneath. */
function causeChain(err: unknown): string {
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    out.push(e instanceof Error ? e.message : String(e));
    if (!(e instanceof Error)) break;
  }
  return out.join(' <- ');
}

/** `ports` attributes a bare connection error to the service listening there. */
export function errorMiddleware(log: Logger, ports: Partial<Record<Dependency, number>> = {}): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const appErr = normalise(err, ports);
    const requestId = res.locals.requestId as string | undefined;
    if (appErr.code === 'INTERNAL') log.error({ err, requestId, path: req.path }, 'request failed');
    else if (statusOf(appErr.code) === 503)
      log.warn({ code: appErr.code, err: causeChain(err), requestId, path: req.path }, 'request refused: a backing service is unavailable');
    if (res.headersSent) {
      res.end();
      return;
    }
    sendProblem(res, appErr, requestId, req.originalUrl.split('?')[0]);
  };
}

export const notFound: RequestHandler = (req, _res, next) => next(new AppError('ROUTE_NOT_FOUND', { detail: `${req.method} ${req.path}` }));

/**
 * Why a JSON body was refused by the parser, which takes only an object or an array at the top: text
 * that is not JSON at all, or JSON of another kind (null, a number, a string, a boolean), said as such.
 */
function parseFailure(raw: unknown): string {
  if (typeof raw !== 'string') return 'The body is not valid JSON';
  try {
    const v: unknown = JSON.parse(raw);
    return `The body must be a JSON object; this one is JSON, but ${v === null ? 'null' : `a ${typeof v}`}`;
  } catch {
    return 'The body is not valid JSON';
  }
}
