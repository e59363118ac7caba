/**
 * A small Ollama REST client over fetch (Node's fetch pools keep-alive
 * connections). Streams are NDJSON. Timeouts: `firstTokenMs` until the first
 * chunk (Ollama sends headers with it), `idleMs` between chunks; both end the
 * request with UPSTREAM_TIMEOUT. Failures are classified for the retry
 * decision: refused/reset before output → UPSTREAM_UNAVAILABLE (retryable),
 * 4xx → UPSTREAM_REJECTED (not retryable), 5xx → UPSTREAM_UNAVAILABLE.
 */
import type { ChatMessage, KeepAlive, OllamaFormat, OllamaOptions } from '../../shared/index.ts';
import { JobFailure } from '../job-failure.ts';

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
}

export interface EmbedResponse {
  model: string;
  embeddings: number[][];
  prompt_eval_count?: number;
}

export interface OllamaClientOptions {
  host: string;
  connectTimeoutMs: number;
  firstTokenTimeoutMs: number;
  idleTimeoutMs: number;
}

export class OllamaClient {
  constructor(readonly opts: OllamaClientOptions) {}

  get host(): string {
    return this.opts.host;
  }

  /** Streams a chat completion. Abort `signal` to stop generation upstream (the connection closes, Ollama stops). */
  async *chat(req: ChatRequest, signal?: AbortSignal): AsyncGenerator<ChatChunk> {
    yield* this.ndjson<ChatChunk>('/api/chat', { ...req, stream: true }, signal);
  }

  async embed(req: { model: string; input: string[]; truncate?: boolean; keep_alive?: KeepAlive }, signal?: AbortSignal): Promise<EmbedResponse> {
    return this.json<EmbedResponse>('POST', '/api/embed', req, signal, this.opts.firstTokenTimeoutMs);
  }

  version(signal?: AbortSignal): Promise<{ version: string }> {
    return this.json('GET', '/api/version', undefined, signal, this.opts.connectTimeoutMs);
  }

  async json<T>(method: string, path: string, body: unknown, signal: AbortSignal | undefined, timeoutMs: number): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(`${this.opts.host}${path}`, {
        method,
        headers: body === undefined ? undefined : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: combined,
      });
    } catch (cause) {
      throw this.transportError(cause, path, signal, timeout, timeoutMs);
    }
    if (!res.ok) throw await this.httpError(res, path);
    try {
      return (await res.json()) as T;
    } catch (cause) {
      throw this.transportError(cause, path, signal, timeout, timeoutMs);
    }
  }

  private async *ndjson<T extends { done?: boolean }>(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut: 'first' | 'idle' | undefined;
    let timer = setTimeout(() => ((timedOut = 'first'), controller.abort()), this.opts.firstTokenTimeoutMs);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => ((timedOut = 'idle'), controller.abort()), this.opts.idleTimeoutMs);
    };
    try {
      let res: Response;
      try {
        res = await fetch(`${this.opts.host}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: controller.signal,
        });
      } catch (cause) {
        throw this.streamError(cause, path, signal, timedOut);
      }
      if (!res.ok || !res.body) throw await this.httpError(res, path);
      const decoder = new TextDecoder();
      let buf = '';
      const reader = res.body.getReader();
      try {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (cause) {
            throw this.streamError(cause, path, signal, timedOut);
          }
          if (chunk.done) break;
          arm();
          buf += decoder.decode(chunk.value, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const parsed = JSON.parse(line) as T & { error?: string };
            if (parsed.error) throw new JobFailure('UPSTREAM_UNAVAILABLE', `ollama: ${parsed.error}`);
            yield parsed;
            if (parsed.done) return;
          }
        }
      } finally {
        reader.releaseLock();
      }
      throw new JobFailure('UPSTREAM_UNAVAILABLE', `ollama ${path}: stream ended before done`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (!controller.signal.aborted) controller.abort();
    }
  }

  private streamError(cause: unknown, path: string, signal: AbortSignal | undefined, timedOut: 'first' | 'idle' | undefined): unknown {
    if (signal?.aborted) return signal.reason ?? cause;
    if (timedOut === 'first') return new JobFailure('UPSTREAM_TIMEOUT', `ollama ${path}: no first token within ${this.opts.firstTokenTimeoutMs} ms`, { cause });
    if (timedOut === 'idle') return new JobFailure('UPSTREAM_TIMEOUT', `ollama ${path}: no token for ${this.opts.idleTimeoutMs} ms`, { cause });
    return new JobFailure('UPSTREAM_UNAVAILABLE', `ollama ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }

  private transportError(cause: unknown, path: string, signal: AbortSignal | undefined, timeout: AbortSignal, timeoutMs: number): unknown {
    if (signal?.aborted) return signal.reason ?? cause;
    if (timeout.aborted) return new JobFailure('UPSTREAM_TIMEOUT', `ollama ${path}: no answer within ${timeoutMs} ms`, { cause });
    return new JobFailure('UPSTREAM_UNAVAILABLE', `ollama ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }

  private async httpError(res: Response, path: string): Promise<JobFailure> {
    const text = await res.text().catch(() => '');
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      /* not JSON */
    }
    const code = res.status >= 500 || res.status === 429 ? 'UPSTREAM_UNAVAILABLE' : 'UPSTREAM_REJECTED';
    return new JobFailure(code, `ollama ${path}: HTTP ${res.status} ${message}`.trim(), { details: { status: res.status } });
  }
}
