/**
 * The resilient Ollama client: one facade over one or more Ollama hosts.
 *
 * Per request:
 *   1. cache (chat and embeddings, when a ResponseCache is configured): a
 *      deterministic chat request or already-seen texts are answered from
 *      Redis (cache.ts); everything else goes on;
 *   2. router.acquire: wait inside this process for a slot on the best host
 *      (router.ts: model loaded there, least loaded, breaker not open; the
 *      per-host AIMD limiter, limiter.ts, sets how many slots there are);
 *   3. send over the host's keep-alive pool (transport.ts) with three clocks:
 *      connect (TCP), first token (Ollama sends headers with it), idle
 *      (between chunks);
 *   4. on failure before the first chunk was handed to the caller: retry with
 *      full-jitter exponential backoff when the failure is retryable
 *      (retry.ts). A stream that already produced output is never retried:
 *      the caller has shown it to users, so the failure is final here and the
 *      job runtime decides (its retry restarts the output with `reset`).
 *   5. feedback: the breaker (breaker.ts) counts host failures; the limiter
 *      shrinks on 503/429 and on a time to first token far above the model's
 *      baseline, and grows on success.
 * Failures leave as JobFailure: UPSTREAM_UNAVAILABLE (refused, reset, 5xx,
 * every breaker open, overload that outlasted its budget), UPSTREAM_TIMEOUT
 * (connect/first-token/idle), UPSTREAM_REJECTED (4xx, e.g. unknown model).
 *
 * Background: `status` (status.ts) polls every host's version, tags and ps
 * once `status.start()` is called; routing, admission, cache digests and
 * metric labels read it.
 *
 * Model management (`models`, models.ts) acts on every host, through the
 * `ollama` package: it needs neither the limiter nor the separate clocks of
 * this transport, only a deadline and an abort per call.
 */
import type { IncomingMessage } from 'node:http';
import { canonicalModelName, type ChatMessage, type KeepAlive, type OllamaFormat, type OllamaOptions } from '../../shared/index.ts';
import type { Config } from '../config.ts';
import { JobFailure } from '../jobs/index.ts';
import { CircuitBreaker, defaultBreakerOptions, type BreakerOptions, type BreakerState } from './breaker.ts';
import {
  isDeterministic,
  scopeTag,
  type CachedChat,
  type CachedEmbedding,
  type CacheKind,
  type CacheMode,
  type CacheOutcome,
  type ResponseCache,
} from './cache.ts';
import { AimdLimiter, defaultAimdOptions, type AimdOptions, type LimitChange } from './limiter.ts';
import { backoffMs, classify, defaultRetryOptions, sleep, toJobFailure, type RetryOptions } from './retry.ts';
import { OllamaModels, type ManageOptions } from './models.ts';
import { HostRouter, type Lease, type UpstreamHost } from './router.ts';
import { OllamaStatus, defaultStatusOptions, type StatusOptions } from './status.ts';
import { HostTransport, UpstreamFault, httpFault, inputFault, readAll, type FaultKind, type TransportOptions } from './transport.ts';

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  options?: OllamaOptions;
  format?: OllamaFormat;
  keep_alive?: KeepAlive;
}

export interface ChatChunk {
  model: string;
  message?: { role: string; content: string };
  done: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  total_duration?: number;
  eval_duration?: number;
  /** Set on the final chunk of an answer replayed from the cache (its counts are then 0: no compute was spent). */
  cached?: boolean;
}

export interface EmbedRequest {
  model: string;
  input: string[];
  truncate?: boolean;
  keep_alive?: KeepAlive;
}

export interface EmbedResponse {
  model: string;
  embeddings: number[][];
  /** Prompt tokens Ollama read for this call: the cache misses only. */
  prompt_eval_count?: number;
  /** How many of the vectors came from the cache. */
  cached?: number;
}

export interface CallOptions {
  /** `bypass` skips the cache lookup and does not store the answer. @defaultValue 'default' */
  cache?: CacheMode;
  /**
   * Whose request this is (a job owner's id). A cache entry another scope caused is still served, but
   * reported as computed (no `cached`, the tokens it cost then); see cache.ts. @defaultValue none: every hit is reported
   */
  cacheScope?: string;
}

export interface OllamaHooks {
  onRetry?(e: { host: string; fault: FaultKind; status?: number; overload: boolean; delayMs: number }): void;
  onCache?(kind: CacheKind, outcome: CacheOutcome, n: number): void;
  onLimit?(host: string, change: LimitChange): void;
  onBreaker?(host: string, state: BreakerState): void;
}

export interface OllamaClientOptions {
  /** The first (or only) host. */
  host: string;
  /** Every host, in preference order. @defaultValue [host] */
  hosts?: string[];
  /** TCP connect, per attempt. */
  connectTimeoutMs: number;
  /** Request sent → first chunk (chat) or whole answer (embed), per attempt. */
  firstTokenTimeoutMs: number;
  /** Between chunks once a stream is flowing. */
  idleTimeoutMs: number;
  transport?: Partial<TransportOptions>;
  retry?: Partial<RetryOptions>;
  breaker?: Partial<BreakerOptions>;
  concurrency?: Partial<AimdOptions>;
  status?: Partial<StatusOptions>;
  cache?: ResponseCache;
  /** How old the status poller's view may be when a model digest (the cache key's model identity) is read from it. @defaultValue 10 000 ms */
  digestTtlMs?: number;
  /** Deadlines of model management calls (models.ts). */
  manage?: Partial<ManageOptions>;
  hooks?: OllamaHooks;
  /** The clock the breakers time their cool-down by, in ms. @defaultValue Date.now */
  clock?: () => number;
}

/** One host's resilience state, for metrics and tests. */
export interface HostSnapshot {
  host: string;
  limit: number;
  capacity: number;
  inFlight: number;
  breaker: BreakerState;
  consecutiveFailures: number;
}

export class OllamaClient {
  readonly status: OllamaStatus;
  /** Model management on every host (list, show, ps, create, copy, delete, load, unload, pull). */
  readonly models: OllamaModels;
  private readonly upstreams: UpstreamHost[];
  private readonly router: HostRouter;
  private readonly retry: RetryOptions;

  constructor(readonly opts: OllamaClientOptions) {
    const urls = [...new Set((opts.hosts?.length ? opts.hosts : [opts.host]).map((h) => h.replace(/\/+$/, '')))];
    const transport: TransportOptions = { keepAliveMs: 30_000, maxSockets: 64, ...opts.transport };
    const breaker: BreakerOptions = { ...defaultBreakerOptions, ...opts.breaker };
    const concurrency: AimdOptions = { ...defaultAimdOptions, ...opts.concurrency };
    this.retry = { ...defaultRetryOptions, ...opts.retry };
    const hooks = opts.hooks;
    this.upstreams = urls.map((url) => ({
      url,
      transport: new HostTransport(url, transport),
      breaker: new CircuitBreaker(
        breaker,
        (s) => {
          hooks?.onBreaker?.(url, s);
          queueMicrotask(() => this.router.pump());
        },
        opts.clock,
      ),
      limiter: new AimdLimiter(concurrency, (c) => {
        hooks?.onLimit?.(url, c);
        if (c.reason === 'increase') queueMicrotask(() => this.router.pump());
      }),
    }));
    this.router = new HostRouter(this.upstreams);
    this.status = new OllamaStatus(this.upstreams, { ...defaultStatusOptions, connectTimeoutMs: opts.connectTimeoutMs, ...opts.status });
    this.router.useView(this.status);
    this.models = new OllamaModels(urls, opts.manage);
  }

  /** The first configured host. */
  get host(): string {
    return this.upstreams[0]!.url;
  }

  get hosts(): string[] {
    return this.upstreams.map((h) => h.url);
  }

  /** Requests waiting inside this process for a slot on any host. */
  get waiting(): number {
    return this.router.waiting;
  }

  hostSnapshots(): HostSnapshot[] {
    return this.upstreams.map((h) => ({
      host: h.url,
      limit: h.limiter.limit,
      capacity: h.limiter.capacity,
      inFlight: h.limiter.inFlight,
      breaker: h.breaker.state,
      consecutiveFailures: h.breaker.consecutiveFailures,
    }));
  }

  /** The host's AIMD limiter (first host by default). */
  limiter(host = this.host): AimdLimiter {
    return this.upstream(host).limiter;
  }

  breaker(host = this.host): CircuitBreaker {
    return this.upstream(host).breaker;
  }

  /**
   * Streams a chat completion. Abort `signal` to stop generation upstream
   * (the connection closes, Ollama stops). Deterministic requests (temperature
   * 0 or a seed) are answered from the cache when possible: one chunk with the
   * whole text, then a final chunk with `cached: true` and zero counts.
   */
  async *chat(req: ChatRequest, signal?: AbortSignal, call: CallOptions = {}): AsyncGenerator<ChatChunk> {
    const cache = this.opts.cache && isDeterministic(req.options) ? this.opts.cache : undefined;
    let store: { model: string; digest: string; key: string } | undefined;
    const tag = scopeTag(call.cacheScope);
    if (cache) {
      const found = await this.lookupChat(cache, req, call.cache);
      if (found && 'hit' in found) {
        const hit = found.hit;
        yield { model: req.model, message: { role: 'assistant', content: hit.text }, done: false };
        // Only the caller's own entry is reported as a hit; another user's is served as if computed.
        if (tag === undefined || hit.by === tag)
          yield { model: req.model, done: true, done_reason: hit.doneReason, prompt_eval_count: 0, eval_count: 0, cached: true };
        else yield { model: req.model, done: true, done_reason: hit.doneReason, prompt_eval_count: hit.promptTokens, eval_count: hit.completionTokens };
        return;
      }
      store = found;
    }
    let text = '';
    const body = { ...req, stream: true };
    for await (const chunk of this.withRetries(req.model, signal, (lease) => this.streamOnce<ChatChunk>(lease, '/api/chat', body, req.model, signal))) {
      text += chunk.message?.content ?? '';
      if (chunk.done && store && cache) {
        const value = {
          model: req.model,
          text,
          doneReason: chunk.done_reason,
          promptTokens: chunk.prompt_eval_count ?? 0,
          completionTokens: chunk.eval_count ?? 0,
          at: new Date().toISOString(),
          by: tag,
        };
        await cache.putChat(store.model, store.digest, store.key, value).catch(() => this.opts.hooks?.onCache?.('chat', 'error', 1));
      }
      yield chunk;
    }
  }

  /** Embeds texts. With a cache, only texts not seen before (for this model digest) go upstream. */
  async embed(req: EmbedRequest, signal?: AbortSignal, call: CallOptions = {}): Promise<EmbedResponse> {
    const cache = this.opts.cache;
    const hooks = this.opts.hooks;
    const n = req.input.length;
    const tag = scopeTag(call.cacheScope);
    let entries: (CachedEmbedding | undefined)[] = new Array<CachedEmbedding | undefined>(n).fill(undefined);
    let digest: string | undefined;
    const model = canonicalModelName(req.model);
    if (cache && call.cache === 'bypass') hooks?.onCache?.('embed', 'bypass', n);
    else if (cache) {
      try {
        digest = await this.digest(model);
        if (!digest) hooks?.onCache?.('embed', 'skip', n);
        else {
          await cache.noteDigest(model, digest);
          entries = await cache.getEmbeddings(model, digest, req.input);
          const hits = entries.filter(Boolean).length;
          if (hits) hooks?.onCache?.('embed', 'hit', hits);
          if (n - hits) hooks?.onCache?.('embed', 'miss', n - hits);
        }
      } catch {
        digest = undefined;
        hooks?.onCache?.('embed', 'error', n);
      }
    }
    const vectors: (number[] | undefined)[] = entries.map((e) => e?.v);
    const missing = vectors.flatMap((v, i) => (v ? [] : [i]));
    // Hits on entries another user caused are reported as computed: their tokens count, they are not `cached`.
    let own = 0;
    let promptTokens = 0;
    for (const e of entries) {
      if (!e) continue;
      if (tag === undefined || e.by === tag) own++;
      else promptTokens += e.t ?? 0;
    }
    if (missing.length) {
      const input = missing.map((i) => req.input[i]!);
      const body = { ...req, input };
      let res: EmbedResponse | undefined;
      for await (const r of this.withRetries(req.model, signal, (lease) => this.embedOnce(lease, body, input.length, signal))) res = r;
      missing.forEach((i, j) => (vectors[i] = res!.embeddings[j]));
      const spent = res!.prompt_eval_count ?? 0;
      promptTokens += spent;
      if (cache && digest)
        await cache
          .putEmbeddings(model, digest, input, res!.embeddings, apportion(spent, input), tag)
          .catch(() => hooks?.onCache?.('embed', 'error', input.length));
    }
    return { model: req.model, embeddings: vectors as number[][], prompt_eval_count: promptTokens, cached: own };
  }

  /**
   * Ollama's version from the best reachable host: not limited, not retried;
   * tries the next host only when one cannot be reached at all.
   */
  async version(signal?: AbortSignal): Promise<{ version: string }> {
    const path = '/api/version';
    const timeoutMs = this.opts.connectTimeoutMs;
    const hosts = this.router.rank(undefined);
    if (!hosts.length) throw new JobFailure('UPSTREAM_UNAVAILABLE', 'ollama: circuit open for every host');
    let last: UpstreamFault | undefined;
    for (const h of hosts) {
      try {
        return await h.transport.json<{ version: string }>('GET', path, undefined, { signal, timeoutMs, connectTimeoutMs: timeoutMs });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        last = err instanceof UpstreamFault ? err : h.transport.fault(err, path);
        if (last.kind !== 'refused' && last.kind !== 'connect-timeout') break;
      }
    }
    throw toJobFailure(last!);
  }

  /** Stops the status poller and closes every pooled connection. */
  close(): void {
    this.status.stop();
    for (const h of this.upstreams) h.transport.close();
  }

  /** A model's digest, from a status view at most `digestTtlMs` old. */
  private async digest(model: string): Promise<string | undefined> {
    await this.status.fresh(this.opts.digestTtlMs ?? 10_000);
    return this.status.digest(model);
  }

  private upstream(host: string): UpstreamHost {
    const h = this.upstreams.find((u) => u.url === host.replace(/\/+$/, ''));
    if (!h) throw new Error(`unknown Ollama host ${host}`);
    return h;
  }

  /** A cache hit, or where to store the answer (`undefined`: do not store). */
  private async lookupChat(
    cache: ResponseCache,
    req: ChatRequest,
    mode: CacheMode | undefined,
  ): Promise<{ hit: CachedChat } | { model: string; digest: string; key: string } | undefined> {
    const hooks = this.opts.hooks;
    if (mode === 'bypass') {
      hooks?.onCache?.('chat', 'bypass', 1);
      return undefined;
    }
    try {
      const model = canonicalModelName(req.model);
      const digest = await this.digest(model);
      if (!digest) {
        hooks?.onCache?.('chat', 'skip', 1);
        return undefined;
      }
      await cache.noteDigest(model, digest);
      const key = cache.chatKey(model, digest, req);
      const hit = await cache.getChat(key);
      hooks?.onCache?.('chat', hit ? 'hit' : 'miss', 1);
      return hit ? { hit } : { model, digest, key };
    } catch {
      hooks?.onCache?.('chat', 'error', 1);
      return undefined;
    }
  }

  /**
   * Runs `once` on leased hosts until it succeeds, retrying only while it has
   * produced nothing. Overload (503/429) retries are bounded by time, host
   * faults by `retry.attempts`; faults prefer another host next time.
   */
  private async *withRetries<T>(model: string, signal: AbortSignal | undefined, once: (lease: Lease) => AsyncGenerator<T>): AsyncGenerator<T> {
    const t0 = Date.now();
    let faults = 0;
    let overloads = 0;
    const avoid = new Set<string>();
    for (;;) {
      let lease: Lease;
      try {
        lease = await this.router.acquire(model, signal, avoid);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw err instanceof UpstreamFault ? toJobFailure(err) : err;
      }
      let produced = false;
      let delayMs = 0;
      try {
        for await (const item of once(lease)) {
          produced = true;
          yield item;
        }
        return;
      } catch (err) {
        if (signal?.aborted) {
          lease.host.breaker.abandoned(lease.probe);
          throw signal.reason;
        }
        const fault = err instanceof UpstreamFault ? err : lease.host.transport.fault(err, '');
        const cls = classify(fault);
        this.feedback(lease, fault);
        if (produced) throw toJobFailure(fault, 'output had begun; not retried');
        if (cls === 'overload') {
          if (Date.now() - t0 >= this.retry.overloadMaxWaitMs) throw toJobFailure(fault, `still overloaded after ${Date.now() - t0} ms`);
          delayMs = backoffMs(overloads++, this.retry);
        } else if (cls === 'transient') {
          faults += 1;
          if (faults >= this.retry.attempts) throw toJobFailure(fault, `gave up after ${faults} attempts`);
          avoid.add(lease.host.url);
          delayMs = backoffMs(faults - 1, this.retry);
        } else {
          throw toJobFailure(fault);
        }
        this.opts.hooks?.onRetry?.({ host: lease.host.url, fault: fault.kind, status: fault.status, overload: cls === 'overload', delayMs });
      } finally {
        lease.release();
      }
      await sleep(delayMs, signal);
    }
  }

  /** Tells the breaker and the limiter what a failed attempt means. */
  private feedback(lease: Lease, fault: UpstreamFault): void {
    const { breaker, limiter } = lease.host;
    switch (classify(fault)) {
      case 'overload':
        limiter.overload(lease.ticket);
        breaker.success();
        return;
      case 'rejected':
        breaker.success();
        return;
      case 'timeout':
        // A cold model may legitimately take longer than the timeout to load; that is not congestion.
        if (fault.kind === 'first-token-timeout' && lease.warm !== false) limiter.stalled(lease.ticket);
        breaker.failure();
        return;
      case 'transient':
        breaker.failure();
        return;
    }
  }

  /** The first chunk arrived after `ms`: the host works; the limiter learns the latency. */
  private firstChunk(lease: Lease, model: string, ms: number, latencySignal: boolean): void {
    lease.host.breaker.success();
    const congested = latencySignal && lease.host.limiter.firstToken(lease.ticket, model, ms, lease.warm === false);
    if (!congested) lease.host.limiter.success();
  }

  /**
   * One NDJSON streaming attempt on a leased host. Throws UpstreamFault for
   * every failure (or the caller's abort reason).
   */
  private async *streamOnce<T extends { done?: boolean }>(
    lease: Lease,
    path: string,
    body: unknown,
    model: string,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<T> {
    const host = lease.host;
    const clock = new StreamClock(host.url, path, this.opts.firstTokenTimeoutMs, this.opts.idleTimeoutMs, signal);
    const t0 = performance.now();
    let completed = false;
    try {
      const res = await clock.guard(
        () => host.transport.send('POST', path, body, { signal: clock.signal, connectTimeoutMs: this.opts.connectTimeoutMs }),
        host.transport,
        path,
      );
      if (res.statusCode !== 200) throw httpFault(host.url, path, res.statusCode ?? 0, await clock.guard(() => readAll(res), host.transport, path));
      const decoder = new TextDecoder();
      let buf = '';
      let first = true;
      let done = false;
      const iterator = (res as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      for (;;) {
        const next = await clock.guard(() => iterator.next(), host.transport, path);
        if (next.done) break;
        if (first) {
          first = false;
          this.firstChunk(lease, model, performance.now() - t0, true);
        }
        clock.idle();
        if (done) continue;
        buf += decoder.decode(next.value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let parsed: T & { error?: string };
          try {
            parsed = JSON.parse(line) as T & { error?: string };
          } catch (cause) {
            throw new UpstreamFault('protocol', host.url, `ollama ${host.url}${path}: malformed NDJSON line`, { cause });
          }
          if (parsed.error) throw inputFault(host.url, parsed.error) ?? new UpstreamFault('protocol', host.url, `ollama ${host.url}${path}: ${parsed.error}`);
          yield parsed;
          if (parsed.done) {
            // Read to the end of the response so the socket goes back to the keep-alive pool.
            done = true;
            break;
          }
        }
      }
      if (!done) throw new UpstreamFault('protocol', host.url, `ollama ${host.url}${path}: stream ended before done`);
      completed = true;
    } finally {
      clock.end(!completed);
    }
  }

  /** One /api/embed attempt: the whole answer within the first-token timeout. */
  private async *embedOnce(lease: Lease, body: EmbedRequest, expected: number, signal: AbortSignal | undefined): AsyncGenerator<EmbedResponse> {
    const host = lease.host;
    const path = '/api/embed';
    const clock = new StreamClock(host.url, path, this.opts.firstTokenTimeoutMs, this.opts.idleTimeoutMs, signal);
    let completed = false;
    try {
      const res: IncomingMessage = await clock.guard(
        () => host.transport.send('POST', path, body, { signal: clock.signal, connectTimeoutMs: this.opts.connectTimeoutMs }),
        host.transport,
        path,
      );
      const text = await clock.guard(() => readAll(res), host.transport, path);
      if (res.statusCode !== 200) throw httpFault(host.url, path, res.statusCode ?? 0, text);
      let parsed: EmbedResponse;
      try {
        parsed = JSON.parse(text) as EmbedResponse;
      } catch (cause) {
        throw new UpstreamFault('protocol', host.url, `ollama ${host.url}${path}: malformed JSON`, { cause });
      }
      if (parsed.embeddings?.length !== expected)
        throw new UpstreamFault('protocol', host.url, `ollama ${host.url}${path}: ${parsed.embeddings?.length ?? 0} vectors for ${expected} inputs`);
      completed = true;
      this.firstChunk(lease, body.model, 0, false);
      yield parsed;
    } finally {
      clock.end(!completed);
    }
  }
}

/**
 * The first-token and idle clocks of one attempt, and the abort that ends it.
 * `guard` runs an I/O step and turns whatever it throws into the right fault:
 * the caller's abort reason, a timeout of this clock, or a transport fault.
 */
class StreamClock {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout;
  private fired: UpstreamFault | undefined;
  private readonly onAbort: () => void;

  constructor(
    private readonly host: string,
    private readonly path: string,
    firstTokenMs: number,
    private readonly idleMs: number,
    private readonly outer: AbortSignal | undefined,
  ) {
    this.onAbort = () => this.controller.abort(outer!.reason);
    if (outer?.aborted) this.controller.abort(outer.reason);
    else outer?.addEventListener('abort', this.onAbort, { once: true });
    this.timer = this.arm(firstTokenMs, 'first-token-timeout', `no first token within ${firstTokenMs} ms`);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** A chunk arrived: from now on the idle clock runs. */
  idle(): void {
    clearTimeout(this.timer);
    this.timer = this.arm(this.idleMs, 'idle-timeout', `no token for ${this.idleMs} ms`);
  }

  async guard<T>(step: () => Promise<T>, transport: HostTransport, path: string): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (this.outer?.aborted) throw this.outer.reason;
      if (this.fired) throw this.fired;
      throw transport.fault(err, path);
    }
  }

  /** Stops the clocks; `abort` also tears the request down (an unfinished or abandoned attempt). */
  end(abort: boolean): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this.onAbort);
    if (abort && !this.controller.signal.aborted) this.controller.abort();
  }

  private arm(ms: number, kind: FaultKind, what: string): NodeJS.Timeout {
    return setTimeout(() => {
      this.fired = new UpstreamFault(kind, this.host, `ollama ${this.host}${this.path}: ${what}`);
      this.controller.abort(this.fired);
    }, ms);
  }
}

/** Builds the client from the parsed configuration; `extras` are what the composition root adds. */
/** `total` tokens shared over texts by length (Ollama reports one count per call), summing to `total`. */
function apportion(total: number, texts: readonly string[]): number[] {
  const chars = texts.reduce((n, t) => n + t.length, 0) || 1;
  const out = texts.map((t) => Math.floor((total * t.length) / chars));
  let rest = total - out.reduce((a, b) => a + b, 0);
  for (let i = 0; rest > 0 && out.length; i = (i + 1) % out.length, rest--) out[i]! += 1;
  return out;
}

export function createOllamaClient(config: Config['ollama'], extras: { cache?: ResponseCache; hooks?: OllamaHooks } = {}): OllamaClient {
  return new OllamaClient({
    host: config.host,
    hosts: config.hosts,
    connectTimeoutMs: config.connectTimeoutMs,
    firstTokenTimeoutMs: config.firstTokenTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    transport: { keepAliveMs: config.keepAliveMs, maxSockets: config.maxSockets },
    retry: config.retry,
    breaker: config.breaker,
    concurrency: config.concurrency,
    status: config.status,
    digestTtlMs: config.digestTtlMs,
    ...extras,
  });
}
