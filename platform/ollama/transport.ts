/**
 * One Ollama host over node:http, with an explicit keep-alive pool.
 *
 * Why node:http rather than fetch: Node 20's fetch does pool keep-alive
 * connections in its global undici dispatcher, but tuning that pool, or
 * getting a timeout for the TCP connect alone, needs undici's `Agent`, which
 * Node 20 only offers through the `undici` package (a new dependency, and a
 * second undici next to Node's own). `http.Agent` is public API and gives us
 * both:
 * - keep-alive sockets reused across requests, at most `maxSockets` per host,
 *   idle sockets closed after `keepAliveMs` (Ollama's Go server keeps idle
 *   connections open indefinitely, so the client side sets the bound);
 * - the socket itself, whose `connect` event ends the connect timeout. Ollama
 *   sends response headers together with the first token, so "unreachable"
 *   (connect) and "slow model" (first token) need separate clocks.
 *
 * Every failure leaves as an `UpstreamFault` with a `kind`; the client's
 * retry policy (retry.ts) and the breaker decide what it means.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

export type FaultKind =
  /** Connection refused or host unreachable: nothing was sent. */
  | 'refused'
  /** The connection was reset or closed before the exchange completed. */
  | 'reset'
  /** TCP connect did not complete within the connect timeout. */
  | 'connect-timeout'
  /** No first chunk within the first-token timeout. */
  | 'first-token-timeout'
  /** No chunk for the idle timeout after output began. */
  | 'idle-timeout'
  /** A non-2xx answer; `status` says which. */
  | 'http'
  /** Ollama reported an error inside a 200 stream, or the stream was malformed or cut short. */
  | 'protocol'
  /**
   * Ollama refused the request because of its input (the client's own mistake, such as an invalid JSON
   * schema in `format`), in a 200 stream or as an HTTP error of any status. Final; the host is healthy.
   * Its message names no host: it is shown to the job's owner.
   */
  | 'input'
  /** Every host's circuit breaker is open: nothing was sent. */
  | 'breaker-open';

export class UpstreamFault extends Error {
  constructor(
    readonly kind: FaultKind,
    readonly host: string,
    message: string,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'UpstreamFault';
    this.status = opts.status;
  }
  readonly status: number | undefined;
}

export interface TransportOptions {
  /** Idle keep-alive sockets are closed after this long. @defaultValue 30 000 ms */
  keepAliveMs: number;
  /** Sockets per host, busy and idle. @defaultValue 64 */
  maxSockets: number;
  /** Custom name resolution (service discovery, a DNS cache). The connect timeout covers it. @defaultValue dns.lookup */
  lookup?: LookupFunction;
}

export interface SendOptions {
  /** Aborting destroys the request; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  connectTimeoutMs: number;
}

const refusedCodes = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

function errCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

export class HostTransport {
  private readonly agent: http.Agent;
  private readonly url: URL;
  private readonly lookup: LookupFunction | undefined;

  constructor(
    /** Base URL, e.g. http://127.0.0.1:11434 (no trailing slash). */
    readonly host: string,
    opts: TransportOptions,
  ) {
    this.url = new URL(host);
    this.lookup = opts.lookup;
    const Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({
      keepAlive: true,
      keepAliveMsecs: 1000,
      timeout: opts.keepAliveMs,
      maxSockets: opts.maxSockets,
      maxFreeSockets: Math.min(16, opts.maxSockets),
      scheduling: 'lifo',
    });
  }

  /**
   * Sends a request and resolves with the response once its headers arrive.
   * The caller reads (or discards) the body and owns any timeout after connect.
   */
  send(method: string, path: string, body: unknown, opts: SendOptions): Promise<IncomingMessage> {
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let connectTimer: NodeJS.Timeout | undefined;
      let settled = false;
      const fail = (err: unknown) => {
        clearTimeout(connectTimer);
        if (settled) return;
        settled = true;
        reject(signal?.aborted ? signal.reason : this.fault(err, path));
      };
      // Not `request({ signal })`: Node hands that signal on to the socket, and an abort once every
      // byte of the answer had arrived (an attempt failed on its last line) destroyed a socket that was
      // going back to the keep-alive pool at that very moment, with nothing listening for its error: an
      // uncaught exception that ended the process. An answer that is all in is drained instead.
      let answer: IncomingMessage | undefined;
      const onAbort = () => {
        if (answer?.complete) answer.resume();
        else req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal?.reason }));
      };
      const req = mod.request({
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port,
        method,
        path,
        agent: this.agent,
        lookup: this.lookup,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : undefined,
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('socket', (socket) => {
        // A reused keep-alive socket is already connected; only a fresh one is timed.
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () => req.destroy(new UpstreamFault('connect-timeout', this.host, `ollama ${this.host}${path}: no connection within ${opts.connectTimeoutMs} ms`)),
          opts.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('response', (res) => {
        answer = res;
        clearTimeout(connectTimer);
        settled = true;
        resolve(res);
      });
      req.on('error', fail);
      req.end(payload);
    });
  }

  /** A JSON request with one overall deadline. Non-2xx answers become `http` faults carrying Ollama's message. */
  async json<T>(method: string, path: string, body: unknown, opts: SendOptions & { timeoutMs: number }): Promise<T> {
    const deadline = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    const timeout = () => new UpstreamFault('first-token-timeout', this.host, `ollama ${this.host}${path}: no answer within ${opts.timeoutMs} ms`);
    try {
      const res = await this.send(method, path, body, { signal, connectTimeoutMs: opts.connectTimeoutMs });
      const text = await readAll(res);
      if ((res.statusCode ?? 0) >= 300) throw httpFault(this.host, path, res.statusCode ?? 0, text);
      return JSON.parse(text) as T;
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (deadline.aborted) throw timeout();
      throw err instanceof UpstreamFault ? err : this.fault(err, path);
    }
  }

  /** Turns a socket-level error into a fault (already-classified faults pass through). */
  fault(err: unknown, path: string): UpstreamFault {
    if (err instanceof UpstreamFault) return err;
    const code = errCode(err);
    const message = err instanceof Error ? err.message : String(err);
    const kind = code && refusedCodes.has(code) ? 'refused' : 'reset';
    return new UpstreamFault(kind, this.host, `ollama ${this.host}${path}: ${message}${code && !message.includes(code) ? ` (${code})` : ''}`, { cause: err });
  }

  close(): void {
    this.agent.destroy();
  }
}

export async function readAll(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of res) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/**
 * Ollama's errors that mean the request's input was at fault, whatever the status it gives them with:
 * `format` holding a JSON schema its grammar converter cannot compile comes back inside a 200 stream, or
 * as HTTP 500 without streaming. Retrying them would only repeat the refusal.
 */
const inputErrors = [/^invalid JSON schema in format\b/i];

/** An input refusal for Ollama's error `message`, or undefined when the message is not one. */
export function inputFault(host: string, message: string, status?: number): UpstreamFault | undefined {
  return inputErrors.some((re) => re.test(message.trim()))
    ? new UpstreamFault('input', host, `The model server refused the request: ${message.trim()}`, { status })
    : undefined;
}

export function httpFault(host: string, path: string, status: number, text: string): UpstreamFault {
  let message = text;
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {
    /* not JSON */
  }
  const input = inputFault(host, message, status);
  if (input) return input;
  return new UpstreamFault('http', host, `ollama ${host}${path}: HTTP ${status} ${message}`.trim(), { status });
}
