/**
 * Routing over several hosts (OLLAMA_HOSTS): prefer a host where the model is
 * already loaded (status poller's /api/ps view), else the least-loaded
 * healthy one; a host whose breaker is open gets nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OllamaClient, type OllamaClientOptions } from '../../platform/ollama/index.ts';
import { startOllamaStub, type OllamaStub } from '../support/ollama-stub.ts';

const real = process.env.OLLAMA_HOST!.replace(/\/+$/, '');
const chatModel = process.env.PARLEY_CHAT_MODEL!;
const digest = 'a'.repeat(64);

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function stubWith(models: { installed: string[]; loaded: string[] }): Promise<OllamaStub> {
  const s = await startOllamaStub({
    models: { installed: models.installed.map((name) => ({ name, digest })), loaded: models.loaded.map((name) => ({ name, digest })) },
  });
  cleanup.push(() => s.close());
  return s;
}

function client(hosts: string[], opts: Partial<OllamaClientOptions> = {}): OllamaClient {
  const c = new OllamaClient({
    host: hosts[0]!,
    hosts,
    connectTimeoutMs: 1_000,
    firstTokenTimeoutMs: 60_000,
    idleTimeoutMs: 30_000,
    retry: { baseMs: 10, maxMs: 50 },
    status: { intervalMs: 60_000 },
    ...opts,
  });
  cleanup.push(() => c.close());
  return c;
}

async function chat(c: OllamaClient, model = 'm:latest', content = 'hi', options = {}): Promise<{ text: string; evalCount?: number }> {
  let text = '';
  let evalCount: number | undefined;
  for await (const ch of c.chat({ model, messages: [{ role: 'user', content }], options })) {
    text += ch.message?.content ?? '';
    if (ch.done) evalCount = ch.eval_count;
  }
  return { text, evalCount };
}

describe('routing between hosts', () => {
  it('sends requests to the host where the model is loaded, even when it is listed second', async () => {
    const a = await stubWith({ installed: ['m:latest'], loaded: [] });
    const b = await stubWith({ installed: ['m:latest'], loaded: ['m:latest'] });
    const c = client([a.url, b.url]);
    await c.status.start();
    for (let i = 0; i < 4; i++) await chat(c);
    expect(b.count('/api/chat')).toBe(4);
    expect(a.count('/api/chat')).toBe(0);
  });

  it('follows the model when the status poller sees it loaded elsewhere', async () => {
    const a = await stubWith({ installed: ['m:latest'], loaded: [] });
    const b = await stubWith({ installed: ['m:latest'], loaded: ['m:latest'] });
    const c = client([a.url, b.url]);
    await c.status.start();
    await chat(c);
    a.models.loaded = [{ name: 'm:latest', digest }];
    b.models.loaded = [];
    await c.status.refresh();
    await chat(c);
    expect(b.count('/api/chat')).toBe(1);
    expect(a.count('/api/chat')).toBe(1);
  });

  it('prefers the real Ollama, which has the chat model loaded, over a stub that only has it installed', async () => {
    // Make sure the real host has the model in memory (an empty generate loads it).
    await fetch(`${real}/api/generate`, { method: 'POST', body: JSON.stringify({ model: chatModel, keep_alive: '30m' }) }).then((r) => r.text());
    const stub = await stubWith({ installed: [chatModel], loaded: [] });
    const c = client([stub.url, real]);
    await c.status.start();
    expect(c.status.isLoaded(real, chatModel)).toBe(true);
    expect(c.status.isLoaded(stub.url, chatModel)).toBe(false);
    const r = await chat(c, chatModel, 'Say hi.', { num_predict: 3, temperature: 0 });
    expect(stub.count('/api/chat')).toBe(0);
    expect(r.text).not.toBe('Hello from the stub.');
    expect(r.evalCount).toBeGreaterThan(0);
  });

  it('spreads concurrent requests over hosts by load when no host has the model loaded', async () => {
    const a = await stubWith({ installed: ['m:latest'], loaded: [] });
    const b = await stubWith({ installed: ['m:latest'], loaded: [] });
    a.fallback = b.fallback = { kind: 'ok', firstTokenDelayMs: 50 };
    const c = client([a.url, b.url], { concurrency: { initial: 4, max: 4 } });
    await c.status.start();
    await Promise.all(Array.from({ length: 8 }, (_, i) => chat(c, 'm:latest', `q${i}`)));
    expect(a.count('/api/chat')).toBe(4);
    expect(b.count('/api/chat')).toBe(4);
  });

  it('avoids a host whose breaker is open and a host that lacks the model', async () => {
    const a = await stubWith({ installed: ['m:latest'], loaded: ['m:latest'] });
    const b = await stubWith({ installed: ['m:latest'], loaded: [] });
    const none = await stubWith({ installed: [], loaded: [] });
    a.fallback = { kind: 'status', status: 500 };
    const c = client([none.url, a.url, b.url], { breaker: { failureThreshold: 2, cooldownMs: 60_000 }, retry: { attempts: 3, baseMs: 5, maxMs: 10 } });
    await c.status.start();
    // First request: a fails, the retry avoids a and goes to b (none lacks the model).
    expect((await chat(c)).text).toBe('Hello from the stub.');
    await chat(c); // a fails again → its breaker opens
    expect(c.breaker(a.url).state).toBe('open');
    const before = a.count('/api/chat');
    for (let i = 0; i < 3; i++) await chat(c);
    expect(a.count('/api/chat')).toBe(before);
    expect(none.count('/api/chat')).toBe(0);
    expect(b.count('/api/chat')).toBe(5);
  });
});
