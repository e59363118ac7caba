/**
 * Adaptive concurrency (AIMD) per host. A 503 storm from the stub (Ollama's
 * "server busy": its queue is full) must shrink the limit and make requests
 * wait inside our process, and every request must still succeed.
 */
import { describe, expect, it } from 'vitest';
import { AimdLimiter, defaultAimdOptions } from '../../platform/ollama/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import { stubbedClients } from '../support/stub-clients.ts';

const fx = stubbedClients({ connectTimeoutMs: 500, firstTokenTimeoutMs: 2_000, idleTimeoutMs: 1_000, retry: { baseMs: 20, maxMs: 200 } });
const { client } = fx;

async function chat(c: OllamaClient, i: number): Promise<string> {
  let text = '';
  for await (const ch of c.chat({ model: 'm', messages: [{ role: 'user', content: `q${i}` }] })) text += ch.message?.content ?? '';
  return text;
}

describe('adaptive concurrency under a 503 storm', () => {
  it('lowers the limit and still completes every request', async () => {
    const N = 12;
    const K = 20;
    fx.stub.script(
      '/api/chat',
      ...Array.from({ length: K }, () => ({
        kind: 'status' as const,
        status: 503,
        error: 'server busy, please try again.  maximum pending requests exceeded',
      })),
    );
    fx.stub.fallback = { kind: 'ok', tokenDelayMs: 5 };
    const limits: { at: number; limit: number; reason: string }[] = [];
    const t0 = performance.now();
    const c = client({
      concurrency: { initial: 8, max: 8 },
      hooks: { onLimit: (_h, ch) => limits.push({ at: Math.round(performance.now() - t0), limit: ch.limit, reason: ch.reason }) },
    });

    const results = await Promise.allSettled(Array.from({ length: N }, (_, i) => chat(c, i)));

    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(results.every((r) => r.status === 'fulfilled' && r.value === 'Hello from the stub.')).toBe(true);
    expect(fx.stub.count('/api/chat')).toBe(N + K);
    const lowest = Math.min(...limits.map((l) => l.limit));
    expect(lowest).toBeLessThanOrEqual(2);
    expect(limits.filter((l) => l.reason === 'overload').length).toBeGreaterThanOrEqual(2);
    // While shrunk, our process, not Ollama, held the waiting requests.
    console.log(
      `503 storm: N=${N} K=${K}; limit 8 → ${lowest} by t=${limits.find((l) => l.limit === lowest)?.at} ms; back to ${c.limiter().limit.toFixed(2)} when all ${N} done at ${Math.round(performance.now() - t0)} ms; changes: ${JSON.stringify(limits.slice(0, 6))}`,
    );
  });

  it('decreases once per congestion episode, not once per rejected request', () => {
    // Driven directly, so "one burst" is exact: eight requests dispatched together, all answered 503.
    const limiter = new AimdLimiter({ ...defaultAimdOptions, initial: 8, max: 8 });
    const changes: string[] = [];
    const burst = Array.from({ length: 8 }, () => limiter.acquire());
    for (const t of burst) {
      const before = limiter.limit;
      limiter.overload(t);
      if (limiter.limit !== before) changes.push(`overload:${limiter.limit}`);
    }
    expect(changes).toEqual(['overload:4']);
    // A request sent after that decrease belongs to a new episode and may shrink it again.
    const later = limiter.acquire();
    limiter.overload(later);
    expect(limiter.limit).toBe(2);
  });

  it('never sends more requests to the host than the current limit allows', async () => {
    fx.stub.fallback = { kind: 'ok', firstTokenDelayMs: 30, tokenDelayMs: 5 };
    const c = client({ concurrency: { initial: 3, max: 3 } });
    await Promise.all(Array.from({ length: 10 }, (_, i) => chat(c, i)));
    expect(fx.stub.peak('/api/chat')).toBe(3);
  });
});

describe('the AIMD rule', () => {
  it('grows by about one per window of successes while the limit is in use', () => {
    const l = new AimdLimiter({ ...defaultAimdOptions, initial: 2, max: 10 });
    for (let round = 0; round < 5; round++) {
      // A full window: every slot busy, each request succeeds.
      const n = l.capacity;
      for (let i = 0; i < n; i++) l.acquire();
      for (let i = 0; i < n; i++) l.success();
      for (let i = 0; i < n; i++) l.release();
    }
    expect(l.limit).toBeGreaterThan(6);
    expect(l.limit).toBeLessThan(7.5);
  });

  it('does not grow a limit that is not in use', () => {
    const l = new AimdLimiter({ ...defaultAimdOptions, initial: 4 });
    for (let i = 0; i < 10; i++) {
      l.acquire();
      l.success();
      l.release();
    }
    expect(l.limit).toBe(4);
  });

  it('shrinks when the time to first token climbs far above the model’s baseline, and ignores cold loads', () => {
    const l = new AimdLimiter({ ...defaultAimdOptions, initial: 8, max: 8 });
    for (let i = 0; i < 6; i++) l.firstToken(l.acquire(), 'm', 100);
    expect(l.firstToken(l.acquire(), 'm', 5_000, true)).toBe(false);
    expect(l.limit).toBe(8);
    expect(l.firstToken(l.acquire(), 'm', 1_000)).toBe(true);
    expect(l.limit).toBeCloseTo(6.4);
    // Another model has its own baseline: its slow first tokens are not compared with m's.
    expect(l.firstToken(l.acquire(), 'big', 1_000)).toBe(false);
  });

  it('never goes below the floor', () => {
    const l = new AimdLimiter({ ...defaultAimdOptions, initial: 4, min: 1 });
    for (let i = 0; i < 10; i++) l.overload(l.acquire());
    expect(l.limit).toBe(1);
    expect(l.capacity).toBe(1);
  });
});
