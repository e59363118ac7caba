/**
 * The HTTP transport under every resource: base URL, credentials,
 * interceptors, retries and the mapping of problem+json to ParleyError.
 *
 * What is retried (exponential backoff with full jitter, Retry-After as a floor):
 * - 429 RATE_LIMITED, whatever the method: the server refused before doing anything
 *   (a 429 BUDGET_EXHAUSTED is not retried: waiting a few seconds does not refill a budget);
 * - 503 for requests that are safe to repeat (below), and for any other request only when
 *   the API's answer says nothing was done (SERVICE_UNAVAILABLE, REDIS_UNAVAILABLE,
 *   POSTGRES_UNAVAILABLE, MONGODB_UNAVAILABLE). A REQUEST_TIMEOUT's outcome is unknown (the
 *   server may still carry the request out), and a 503 that is not ours (a proxy's page) says
 *   nothing: a POST or PATCH is not sent twice on either;
 * - network failures, only for requests that are safe to repeat: GET, HEAD, PUT, DELETE,
 *   and requests marked `idempotent` (a job submission carries an Idempotency-Key).
 * A 401 is answered once by renewing the credential (refresh or sign-in) and sending again.
 */
import { ApiErrorCode, OAuthError, Problem, type TokenResponse } from '../../shared/index.ts';
import { abortError, ParleyError } from '../errors.ts';
import { backoffDelay, parseRetryAfter, sleep, type RetryOptions } from './backoff.ts';
import type { Credentials } from './auth.ts';

/** One HTTP attempt as interceptors see it. `headers` may be changed by `onRequest`. */
export interface RequestContext {
  method: string;
  url: string;
  headers: Headers;
  /** JSON text, a form, or the bytes of an upload. */
  body: string | URLSearchParams | Blob | undefined;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
}

export interface ResponseContext {
  request: RequestContext;
  response: Response;
  /** From sending to the response headers. */
  durationMs: number;
}

export interface RetryContext {
  request: RequestContext;
  /** The attempt about to be made. */
  attempt: number;
  delayMs: number;
  /** `network`, or the status that is retried. */
  reason: 'network' | 429 | 503;
  error: unknown;
}

export interface Interceptors {
  /** Before each attempt: add headers, log, start a timer. */
  onRequest?: (req: RequestContext) => void | Promise<void>;
  /** After each attempt's response (retried ones included): log, count, read headers. */
  onResponse?: (res: ResponseContext) => void | Promise<void>;
  /** Before waiting for a retry. */
  onRetry?: (info: RetryContext) => void;
}

export interface RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as application/x-www-form-urlencoded (the token endpoint). */
  form?: Record<string, string>;
  /** Sent as bytes with this content type (an archive upload). */
  binary?: { data: Blob; contentType: string };
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Safe to send again after a network failure or any 503 (e.g. it carries an Idempotency-Key, which also makes it so). */
  idempotent?: boolean;
  /** @defaultValue true */
  auth?: boolean;
  retry?: RetryOptions | false;
}

export interface HttpResult<T> {
  data: T;
  response: Response;
}

export interface HttpOptions {
  baseUrl: string;
  credentials: Credentials;
  fetch: typeof fetch;
  retry: Required<RetryOptions>;
  interceptors: Interceptors[];
  userAgent?: string;
}

export class Http {
  constructor(readonly opts: HttpOptions) {}

  url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(path.replace(/^\//, ''), this.opts.baseUrl.endsWith('/') ? this.opts.baseUrl : `${this.opts.baseUrl}/`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  async request<T>(o: RequestOptions): Promise<HttpResult<T>> {
    const retry = o.retry === false ? { ...this.opts.retry, retries: 0 } : { ...this.opts.retry, ...o.retry };
    const safe =
      o.idempotent ||
      o.method === 'GET' ||
      o.method === 'PUT' ||
      o.method === 'DELETE' ||
      Object.keys(o.headers ?? {}).some((h) => h.toLowerCase() === 'idempotency-key');
    const url = this.url(o.path, o.query);
    let renewed = false;
    for (let attempt = 1; ; attempt++) {
      if (o.signal?.aborted) throw abortError(o.signal);
      const headers = new Headers({ accept: 'application/json, application/problem+json', ...o.headers });
      let body: RequestContext['body'];
      if (o.binary) {
        headers.set('content-type', o.binary.contentType);
        body = o.binary.data;
      } else if (o.form) body = new URLSearchParams(o.form);
      else if (o.body !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(o.body);
      }
      const token = o.auth === false ? undefined : await this.opts.credentials.token(o.signal);
      if (token) headers.set('authorization', `Bearer ${token}`);
      const req: RequestContext = { method: o.method, url, headers, body, attempt };
      for (const i of this.opts.interceptors) await i.onRequest?.(req);

      const t0 = Date.now();
      let response: Response;
      try {
        response = await this.opts.fetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: o.signal ?? null });
      } catch (err) {
        if (o.signal?.aborted) throw abortError(o.signal);
        const failure = new ParleyError({
          code: 'NETWORK_ERROR',
          status: 0,
          detail: `${o.method} ${o.path}: ${(err as Error)?.message ?? String(err)}`,
          cause: err,
        });
        if (!safe || attempt > retry.retries) throw failure;
        await this.wait(req, attempt + 1, 'network', failure, backoffDelay(attempt, retry), o.signal);
        continue;
      }
      for (const i of this.opts.interceptors) await i.onResponse?.({ request: req, response, durationMs: Date.now() - t0 });

      if (response.ok || response.status === 304) return { data: (await readBody(response, o.signal)) as T, response };

      const error = await toError(response, o.signal);
      if (response.status === 401 && o.auth !== false && !renewed && token) {
        renewed = true;
        if (await this.opts.credentials.renew(token, o.signal)) {
          attempt--;
          continue;
        }
      }
      const reason = response.status === 503 ? 503 : response.status === 429 && error.code === 'RATE_LIMITED' ? 429 : undefined;
      if (reason === undefined || attempt > retry.retries) throw error;
      if (reason === 503 && !safe && !saysNothingDone(error)) throw error;
      const after = parseRetryAfter(response.headers.get('retry-after'));
      if (after !== undefined && after > retry.maxRetryAfterMs) throw error;
      await this.wait(req, attempt + 1, reason, error, backoffDelay(attempt, retry, after), o.signal);
    }
  }

  private async wait(request: RequestContext, attempt: number, reason: RetryContext['reason'], error: unknown, delayMs: number, signal?: AbortSignal) {
    for (const i of this.opts.interceptors) i.onRetry?.({ request, attempt, delayMs, reason, error });
    await sleep(delayMs, signal);
  }

  /** The OAuth2 token endpoint. Never retried after a network failure: a refresh may already have rotated. */
  grant = async (form: Record<string, string>, signal?: AbortSignal): Promise<TokenResponse> =>
    (await this.request<TokenResponse>({ method: 'POST', path: '/v1/auth/token', form, auth: false, signal, retry: { retries: 1 } })).data;
}

/** 503 codes whose answer says the request changed nothing (docs/errors.md), so any method may be sent again. */
const nothingDoneCodes: ReadonlySet<string> = new Set(['SERVICE_UNAVAILABLE', 'REDIS_UNAVAILABLE', 'POSTGRES_UNAVAILABLE', 'MONGODB_UNAVAILABLE']);

/** Errors read from the API's own answer (problem+json, or the token endpoint's OAuth2 JSON), not made up from a status. */
const fromApi = new WeakSet<ParleyError>();

function saysNothingDone(error: ParleyError): boolean {
  return fromApi.has(error) && nothingDoneCodes.has(error.code);
}

async function readBody(response: Response, signal?: AbortSignal): Promise<unknown> {
  if (response.status === 204 || response.status === 304) return undefined;
  try {
    const text = await response.text();
    if (!text) return undefined;
    return /json/.test(response.headers.get('content-type') ?? '') ? JSON.parse(text) : text;
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw new ParleyError({ code: 'NETWORK_ERROR', status: response.status, detail: 'the response body could not be read', cause: err });
  }
}

/** A non-2xx answer as a ParleyError: problem+json when the API answered, UNEXPECTED_RESPONSE otherwise. */
export async function toError(response: Response, signal?: AbortSignal): Promise<ParleyError> {
  const requestId = response.headers.get('x-request-id') ?? undefined;
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
  const retryAfterSeconds = retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000);
  let text = '';
  try {
    text = await response.text();
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = Problem.safeParse(json);
  if (parsed.success) {
    // The schema's members, validated, over the body as sent: extension members (`reason`, `limit`, …) stay.
    const p = { ...(json as object), ...parsed.data };
    return ours(
      new ParleyError({
        code: p.code,
        status: response.status,
        title: p.title,
        requestId: p.requestId ?? requestId,
        problem: p,
        retryAfterSeconds,
        ...(p.detail ? { detail: p.detail } : {}),
        ...(p.errors ? { errors: p.errors } : {}),
      }),
    );
  }
  // The token endpoint answers RFC 6749 §5.2 JSON (`error`, `error_description`), with our `code` beside it.
  const oauth = OAuthError.safeParse(json);
  if (oauth.success && ApiErrorCode.safeParse(oauth.data.code).success) {
    const o = oauth.data;
    return ours(
      new ParleyError({
        code: o.code as ApiErrorCode,
        status: response.status,
        title: o.error,
        detail: o.error_description,
        requestId: o.requestId ?? requestId,
        retryAfterSeconds,
      }),
    );
  }
  // Not our problem shape: a proxy's error page, or a gateway. 503s stay SERVICE_UNAVAILABLE so safe requests are retried.
  const code = response.status === 503 ? 'SERVICE_UNAVAILABLE' : response.status === 429 ? 'RATE_LIMITED' : 'UNEXPECTED_RESPONSE';
  return new ParleyError({
    code,
    status: response.status,
    detail: `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`,
    requestId,
    retryAfterSeconds,
  });
}

function ours(error: ParleyError): ParleyError {
  fromApi.add(error);
  return error;
}
