/**
 * Failures the real Ollama cannot produce on demand, from the fault-injecting
 * stub: resets, hangs before headers and after tokens, unreachable hosts,
 * transient 5xx. Every one must end in a typed terminal error, quickly, and a
 * stream that already produced output must never be retried.
 */
import { describe, expect, it } from 'vitest';
import type { ChatChunk, OllamaClient } from '../../platform/ollama/index.ts';
import { llmChatHandler } from '../../workers/handlers/llm-chat.ts';
import { createLogger } from '../../platform/observability/index.ts';
import { stubbedClients } from '../support/stub-clients.ts';
import { until } from '../support/until.ts';

const fx = stubbedClients({ connectTimeoutMs: 300, firstTokenTimeoutMs: 400, idleTimeoutMs: 300, retry: { baseMs: 20, maxMs: 100 } });
const { client } = fx;

/** Drains a chat; returns the chunks seen and the error it ended with (if any). */
async function drain(c: OllamaClient, signal?: AbortSignal) {
  const chunks: ChatChunk[] = [];
  try {
    for await (const ch of c.chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, signal)) chunks.push(ch);
    return { chunks, error: undefined as any };
  } catch (error) {
    return { chunks, error: error as any };
  }
}

describe('no retry once output began', () => {
  it('a connection reset mid-stream fails with UPSTREAM_UNAVAILABLE after exactly one request', async () => {
    fx.stub.script('/api/chat', { kind: 'reset-after', tokens: 3 });
    const r = await drain(client());
    expect(r.chunks.map((c) => c.message?.content)).toEqual(['t0 ', 't1 ', 't2 ']);
    expect(r.error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(r.error.message).toMatch(/not retried/);
    expect(fx.stub.count('/api/chat')).toBe(1);
  });

  it('the llm.chat handler fails the attempt with UPSTREAM_UNAVAILABLE and keeps the streamed text', async () => {
    fx.stub.script('/api/chat', { kind: 'reset-after', tokens: 2 });
    const emitted: string[] = [];
    const handler = llmChatHandler({ ollama: client(), chatModel: 'm', defaultNumPredict: 16 });
    const ctx = {
      jobId: 'j1',
      attempt: 1,
      ownerId: null,
      signal: new AbortController().signal,
      log: createLogger('test', 'silent'),
      progress: () => {},
      emitTokens: (t: string) => void emitted.push(t),
      meter: () => {},
      abortReason: undefined,
      willRetry: () => false,
      addUsage: async () => true,
    };
    const err = await handler({ messages: [{ role: 'user', content: 'hi' }] }, ctx).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(emitted.join('')).toBe('t0 t1 ');
    expect(fx.stub.count('/api/chat')).toBe(1);
  });
});

describe('timeouts', () => {
  it('a hang before headers ends with UPSTREAM_TIMEOUT as a first-token timeout, without a retry', async () => {
    fx.stub.fallback = { kind: 'hang' };
    const r = await drain(client({ firstTokenTimeoutMs: 400 }));
    expect(r.error).toMatchObject({ code: 'UPSTREAM_TIMEOUT', details: { fault: 'first-token-timeout' } });
    expect(fx.stub.count('/api/chat')).toBe(1);
  });

  it('a hang after some tokens ends with UPSTREAM_TIMEOUT once the idle timeout passes', async () => {
    fx.stub.script('/api/chat', { kind: 'hang-after', tokens: 2 });
    const r = await drain(client({ idleTimeoutMs: 300 }));
    expect(r.chunks).toHaveLength(2);
    expect(r.error).toMatchObject({ code: 'UPSTREAM_TIMEOUT', details: { fault: 'idle-timeout' } });
    expect(fx.stub.count('/api/chat')).toBe(1);
  });

  it('a connection that cannot be established fails with UPSTREAM_TIMEOUT as a connect timeout', async () => {
    // A name lookup that never answers keeps the socket in its connecting phase, as a blackholed host does.
    const c = client({
      host: 'http://ollama.invalid:11434',
      connectTimeoutMs: 250,
      retry: { attempts: 2, baseMs: 10, maxMs: 20 },
      transport: { lookup: () => {} },
    });
    const r = await drain(c);
    expect(r.error).toMatchObject({ code: 'UPSTREAM_TIMEOUT', details: { fault: 'connect-timeout' } });
  });

  it('cancelling during a hang stops at once with the caller’s reason', async () => {
    fx.stub.fallback = { kind: 'hang' };
    const ac = new AbortController();
    const draining = drain(client({ firstTokenTimeoutMs: 10_000 }), ac.signal);
    await until('the request to hang at the stub', () => fx.stub.active('/api/chat') === 1);
    ac.abort('cancelled');
    const r = await draining;
    // Not UPSTREAM_TIMEOUT: the cancel, not the 10 s first-token timeout, ended it.
    expect(r.error).toBe('cancelled');
  });
});

describe('answers that break the protocol', () => {
  // A malformed answer is the host's fault (a crashed runner, a proxy's error page): retried before any
  // output like a 5xx, then UPSTREAM_UNAVAILABLE with fault "protocol" and what was wrong.
  // Regression (found by this test): the abort that ends a failed attempt destroyed a keep-alive socket
  // whose answer had fully arrived, and its error went unheard: an uncaught exception in the process.
  it('a chat answer that is not NDJSON is retried, then fails with UPSTREAM_UNAVAILABLE, and nothing is left uncaught', async () => {
    fx.stub.fallback = { kind: 'raw', body: '<html>502 Bad Gateway</html>\n' };
    const r = await drain(client({ retry: { attempts: 2, baseMs: 10, maxMs: 20 } }));
    expect(r.chunks).toEqual([]);
    expect(r.error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { fault: 'protocol' } });
    expect(r.error.message).toMatch(/malformed NDJSON line/);
    expect(fx.stub.count('/api/chat')).toBe(2);
  });

  it('an embed answer that is not JSON fails with UPSTREAM_UNAVAILABLE', async () => {
    fx.stub.fallback = { kind: 'raw', body: 'not json' };
    const err = await client({ retry: { attempts: 1 } })
      .embed({ model: 'm', input: ['a', 'b'] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { fault: 'protocol' } });
    expect((err as Error).message).toMatch(/malformed JSON/);
  });

  it('an embed answer with fewer vectors than inputs fails instead of pairing texts with the wrong vectors', async () => {
    fx.stub.fallback = { kind: 'raw', body: JSON.stringify({ model: 'm', embeddings: [[0.1, 0.2]], prompt_eval_count: 2 }) };
    const err = await client({ retry: { attempts: 1 } })
      .embed({ model: 'm', input: ['a', 'b'] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { fault: 'protocol' } });
    expect((err as Error).message).toMatch(/1 vectors for 2 inputs/);
  });
});

describe('retries before the first token', () => {
  it('retries a 502 and a 500 before the first token, then streams the answer', async () => {
    fx.stub.script('/api/chat', { kind: 'status', status: 502 }, { kind: 'status', status: 500 });
    const r = await drain(client({ retry: { attempts: 3, baseMs: 10, maxMs: 50 } }));
    expect(r.error).toBeUndefined();
    expect(r.chunks.at(-1)).toMatchObject({ done: true });
    expect(fx.stub.count('/api/chat')).toBe(3);
  });

  it('gives up after the configured attempts with UPSTREAM_UNAVAILABLE', async () => {
    fx.stub.fallback = { kind: 'status', status: 500, error: 'runner crashed' };
    const r = await drain(client({ retry: { attempts: 3, baseMs: 10, maxMs: 20 } }));
    expect(r.error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { status: 500 } });
    expect(r.error.message).toMatch(/runner crashed/);
    expect(fx.stub.count('/api/chat')).toBe(3);
  });

  it('retries a connection refused before the first token on a host that comes back', async () => {
    await fx.stub.down();
    // The host comes back once the client has been refused twice (not after a fixed time).
    const refusals: string[] = [];
    const hooks = { onRetry: (e: { fault: string }) => void (refusals.push(e.fault) === 2 && fx.stub.up()) };
    const r = await drain(client({ retry: { attempts: 10, baseMs: 20, maxMs: 100 }, breaker: { failureThreshold: 100 }, hooks }));
    expect(refusals.slice(0, 2)).toEqual(['refused', 'refused']);
    expect(r.error).toBeUndefined();
    expect(r.chunks.at(-1)).toMatchObject({ done: true });
  });
});
