/**
 * The circuit breaker per host: N consecutive failures open it, requests
 * then fail fast without reaching the host, and after the cool-down one
 * probe decides between closed and open again.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../platform/ollama/index.ts';
import { OllamaClient } from '../../platform/ollama/index.ts';
import type { BreakerState } from '../../platform/ollama/index.ts';
import { startOllamaStub, type OllamaStub } from '../support/ollama-stub.ts';

let stub: OllamaStub;
let client: OllamaClient;
let transitions: BreakerState[];
/** The breakers' clock, moved by hand: the cool-down is a setting (300 ms), never waited out. */
let clock: number;

beforeEach(async () => {
  stub = await startOllamaStub();
  transitions = [];
  clock = 1_000_000;
  client = new OllamaClient({
    clock: () => clock,
    host: stub.url,
    connectTimeoutMs: 300,
    firstTokenTimeoutMs: 1_000,
    idleTimeoutMs: 500,
    // One attempt per request, so each request is one failure the breaker counts.
    retry: { attempts: 1, baseMs: 20, maxMs: 50 },
    breaker: { failureThreshold: 3, cooldownMs: 300 },
    hooks: { onBreaker: (_h, s) => transitions.push(s) },
  });
});
afterEach(async () => {
  client.close();
  await stub.close();
});

async function chat(): Promise<{ error?: any; text: string }> {
  let text = '';
  try {
    for await (const ch of client.chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })) text += ch.message?.content ?? '';
    return { text };
  } catch (error) {
    return { error, text };
  }
}

describe('circuit breaker', () => {
  it('opens after consecutive failures and then fails fast without contacting the host', async () => {
    stub.fallback = { kind: 'status', status: 500 };
    for (let i = 0; i < 3; i++) expect((await chat()).error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(client.breaker().state).toBe('open');
    const fast = await chat();
    expect(fast.error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { fault: 'breaker-open' } });
    expect(stub.count('/api/chat')).toBe(3);
  });

  it('lets one probe through after the cool-down and closes when it succeeds', async () => {
    stub.fallback = { kind: 'status', status: 500 };
    for (let i = 0; i < 3; i++) await chat();
    expect(client.breaker().state).toBe('open');
    stub.fallback = { kind: 'ok', firstTokenDelayMs: 100 };
    clock += 299;
    expect(client.breaker().state).toBe('open');
    expect((await chat()).error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { fault: 'breaker-open' } });
    clock += 1;
    expect(client.breaker().state).toBe('half-open');
    // Two requests at once: the probe goes first, the other waits for its verdict instead of failing.
    const [a, b] = await Promise.all([chat(), chat()]);
    expect(a).toEqual({ text: 'Hello from the stub.' });
    expect(b).toEqual({ text: 'Hello from the stub.' });
    expect(client.breaker().state).toBe('closed');
    expect(transitions).toEqual(['open', 'half-open', 'closed']);
  });

  it('opens again for another cool-down when the probe fails', async () => {
    stub.fallback = { kind: 'status', status: 500 };
    for (let i = 0; i < 3; i++) await chat();
    clock += 300;
    expect((await chat()).error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', details: { status: 500 } });
    expect(client.breaker().state).toBe('open');
    expect(stub.count('/api/chat')).toBe(4);
    expect(transitions).toEqual(['open', 'half-open', 'open']);
  });

  it('does not count 4xx answers or 503s against the host: it answered', async () => {
    stub.script('/api/chat', ...Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 404, error: 'model "m" not found' })));
    for (let i = 0; i < 4; i++) expect((await chat()).error).toMatchObject({ code: 'UPSTREAM_REJECTED' });
    stub.script('/api/chat', ...Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 503 })));
    expect(await chat()).toEqual({ text: 'Hello from the stub.' });
    expect(client.breaker().state).toBe('closed');
    expect(client.breaker().consecutiveFailures).toBe(0);
    expect(transitions).toEqual([]);
  });

  it('counts only consecutive failures: a success in between resets the count', () => {
    const b = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1000 });
    b.failure();
    b.success();
    b.failure();
    expect(b.state).toBe('closed');
    b.failure();
    expect(b.state).toBe('open');
  });
});
