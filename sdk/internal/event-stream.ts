/**
 * Resumable event streams: one async iterable over many connections.
 *
 * Every event of a job or room stream carries `seq`, strictly increasing.
 * The stream remembers the last seq it handed out; when a connection drops
 * (network, proxy, server restart, an expired token) it reconnects after a
 * jittered backoff and asks for the events after that seq (SSE:
 * Last-Event-ID; Socket.IO: `lastSeq`). Anything at or below it is dropped,
 * so the consumer sees each event once, in order: no gap, no duplicate.
 * It ends after the catalog's last event (`finished`, a closing `status`),
 * and at once when the server says there is nothing after the seq resumed
 * from (SSE 204, Socket.IO ack `ended`).
 * In a browser it also drops the connection when the page goes offline and
 * reconnects as soon as it is back online.
 */
import { ParleyError, type ParleyErrorCode } from '../errors.ts';
import { backoffDelay, sleep } from './backoff.ts';
import type { Http } from './http.ts';
import { toError } from './http.ts';
import { parseSse } from './sse.ts';

export interface SeqEvent {
  event: string;
  data: { seq: number };
}

/**
 * What a connection yields when the server says the stream ended at or before `afterSeq` (SSE 204,
 * Socket.IO ack `{ ok: true, ended: true }`): nothing more will ever come, so the stream ends at once.
 */
export const STREAM_ENDED: unique symbol = Symbol('parley.stream-ended');

/** Opens one connection that yields the events after `afterSeq` (or STREAM_ENDED), and returns when the connection ends. */
export type OpenConnection<E> = (afterSeq: number, signal: AbortSignal) => AsyncIterable<E | typeof STREAM_ENDED>;

export interface StreamOptions {
  /** Closes the stream (and, with `cancelJob`, cancels the job). */
  signal?: AbortSignal | undefined;
  /** Resume after this seq (the last one you processed). @defaultValue 0: from the start */
  afterSeq?: number;
  /** Reconnects in a row, without an event in between, before the stream gives up. @defaultValue 10 */
  maxReconnects?: number;
  /** Called before each reconnect. */
  onReconnect?: (info: { attempt: number; afterSeq: number; error: unknown }) => void;
}

/** Failures worth reconnecting for; anything else (404, 403, a bad request) ends the stream with the error. */
const transient: ParleyErrorCode[] = [
  'NETWORK_ERROR',
  'SERVICE_UNAVAILABLE',
  'REDIS_UNAVAILABLE',
  'POSTGRES_UNAVAILABLE',
  'MONGODB_UNAVAILABLE',
  'RATE_LIMITED',
  'REQUEST_TIMEOUT',
  'INTERNAL',
  'UNEXPECTED_RESPONSE',
];

/**
 * In a browser: the window, whose `offline` and `online` events say when the network went and came back.
 * A connection that dies with the network may not error for minutes (no TCP keepalive), so the stream
 * drops it on `offline` and reconnects on `online`. Undefined in Node.
 */
type Network = {
  addEventListener: (t: string, f: () => void) => void;
  removeEventListener: (t: string, f: () => void) => void;
  navigator: { onLine: boolean };
};
const network: Network | undefined = (() => {
  const g = globalThis as unknown as Partial<Network>;
  return typeof g.addEventListener === 'function' && typeof g.navigator?.onLine === 'boolean' ? (g as Network) : undefined;
})();

function untilOnline(net: Network, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      net.removeEventListener('online', done);
      signal.removeEventListener('abort', stop);
      resolve();
    };
    const stop = () => {
      net.removeEventListener('online', done);
      reject(new Error('aborted'));
    };
    net.addEventListener('online', done);
    signal.addEventListener('abort', stop, { once: true });
  });
}

export class EventStream<E extends SeqEvent> implements AsyncIterable<E> {
  readonly #controller = new AbortController();
  readonly #open: OpenConnection<E>;
  readonly #isLast: (e: E) => boolean;
  readonly #opts: StreamOptions;
  readonly #onEarlyClose: (() => void) | undefined;
  #lastSeq: number;
  #reconnects = 0;
  #started = false;
  #finished = false;

  constructor(open: OpenConnection<E>, isLast: (e: E) => boolean, opts: StreamOptions = {}, onEarlyClose?: () => void) {
    this.#open = open;
    this.#isLast = isLast;
    this.#opts = opts;
    this.#onEarlyClose = onEarlyClose;
    this.#lastSeq = opts.afterSeq ?? 0;
    const outer = opts.signal;
    if (outer?.aborted) this.#controller.abort(outer.reason);
    else if (outer) {
      const onAbort = () => this.close();
      outer.addEventListener('abort', onAbort, { once: true });
      // Let go of a long-lived signal (a component's, say) once this stream is over.
      this.#controller.signal.addEventListener('abort', () => outer.removeEventListener('abort', onAbort), { once: true });
    }
  }

  /** The last seq handed out: pass it as `afterSeq` to resume elsewhere. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** How many times the stream reconnected. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Ends the stream: a pending `next()` resolves as done and the connection closes. */
  close(): void {
    this.#controller.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<E, void, undefined> {
    if (this.#started) throw new Error('an event stream can be iterated once');
    this.#started = true;
    const signal = this.#controller.signal;
    const max = this.#opts.maxReconnects ?? 10;
    let failures = 0;
    try {
      while (!signal.aborted) {
        let error: unknown;
        // One controller per connection: the stream's own, or the browser going offline, ends it.
        const connection = new AbortController();
        const drop = () => connection.abort();
        signal.addEventListener('abort', drop, { once: true });
        network?.addEventListener('offline', drop);
        try {
          for await (const e of this.#open(this.#lastSeq, connection.signal)) {
            if (e === STREAM_ENDED) {
              this.#finished = true;
              return;
            }
            if (e.data.seq <= this.#lastSeq) {
              // The last event at or below the seq resumed from (an `afterSeq` beyond the stream's end): it is over.
              if (!this.#isLast(e)) continue;
              this.#finished = true;
              return;
            }
            this.#lastSeq = e.data.seq;
            failures = 0;
            yield e;
            if (this.#isLast(e)) {
              this.#finished = true;
              return;
            }
          }
        } catch (err) {
          if (signal.aborted) return;
          if (!connection.signal.aborted && (!(err instanceof ParleyError) || !transient.includes(err.code))) throw err;
          error = err;
        } finally {
          signal.removeEventListener('abort', drop);
          network?.removeEventListener('offline', drop);
        }
        if (signal.aborted) return;
        failures++;
        if (failures > max)
          throw error ?? new ParleyError({ code: 'NETWORK_ERROR', status: 0, detail: `the stream ended ${failures} times in a row without its last event` });
        this.#reconnects++;
        this.#opts.onReconnect?.({ attempt: failures, afterSeq: this.#lastSeq, error });
        try {
          // Offline, nothing can connect: wait for the network to come back (that is no failure), then go at once.
          if (network && !network.navigator.onLine) {
            failures--;
            await untilOnline(network, signal);
          } else await sleep(backoffDelay(failures, { retries: max, baseDelayMs: 250, maxDelayMs: 5000, maxRetryAfterMs: 0 }), signal);
        } catch {
          return;
        }
      }
    } finally {
      if (!this.#finished) this.#onEarlyClose?.();
      this.#controller.abort();
    }
  }
}

/**
 * One SSE connection: GET `path` with Last-Event-ID, through the client's
 * credentials (a 401 renews once) and interceptors. An `auth_error` frame
 * (the server rechecks credentials while streaming) renews the credential
 * and ends the connection, so the stream reconnects with the new one.
 */
export function sseConnection<E extends SeqEvent>(http: Http, path: string): OpenConnection<E> {
  return async function* open(afterSeq, signal) {
    const url = http.url(path);
    let renewed = false;
    for (;;) {
      const token = await http.opts.credentials.token(signal);
      const headers = new Headers({ accept: 'text/event-stream' });
      if (token) headers.set('authorization', `Bearer ${token}`);
      if (afterSeq > 0) headers.set('last-event-id', String(afterSeq));
      const req = { method: 'GET', url, headers, body: undefined, attempt: 1 };
      for (const i of http.opts.interceptors) await i.onRequest?.(req);
      const t0 = Date.now();
      let res: Response;
      try {
        res = await http.opts.fetch(req.url, { headers: req.headers, signal, cache: 'no-store' });
      } catch (err) {
        if (signal.aborted) return;
        throw new ParleyError({ code: 'NETWORK_ERROR', status: 0, detail: `GET ${path}: ${(err as Error)?.message ?? String(err)}`, cause: err });
      }
      for (const i of http.opts.interceptors) await i.onResponse?.({ request: req, response: res, durationMs: Date.now() - t0 });
      if (res.status === 401 && token && !renewed) {
        renewed = true;
        await res.body?.cancel().catch(() => {});
        if (await http.opts.credentials.renew(token, signal)) continue;
      }
      // 204: the stream ended at or before afterSeq (the server's answer to resuming after the last event).
      if (res.status === 204) {
        await res.body?.cancel().catch(() => {});
        yield STREAM_ENDED;
        return;
      }
      if (!res.ok || !res.body) throw await toError(res, signal);
      try {
        for await (const frame of parseSse(res.body)) {
          if (frame.event === 'auth_error') {
            await http.opts.credentials.renew(token, signal);
            return;
          }
          if (frame.id === undefined) continue;
          yield { event: frame.event, data: JSON.parse(frame.data) } as E;
        }
      } catch (err) {
        if (signal.aborted || err instanceof ParleyError || err instanceof SyntaxError) throw err;
        throw new ParleyError({
          code: 'NETWORK_ERROR',
          status: 0,
          detail: `GET ${path}: the stream broke: ${(err as Error)?.message ?? String(err)}`,
          cause: err,
        });
      }
      return;
    }
  };
}
