/**
 * The resilient client on the happy path, against the real Ollama: streaming,
 * usage, embeddings, version; and keep-alive reuse (observed on the stub,
 * which can see the client's port).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OllamaClient, type ChatChunk } from '../../platform/ollama/index.ts';
import { startOllamaStub, type OllamaStub } from '../support/ollama-stub.ts';

const host = process.env.OLLAMA_HOST!;
const chatModel = process.env.PARLEY_CHAT_MODEL!;
const embedModel = process.env.PARLEY_EMBED_MODEL!;
const timeouts = { connectTimeoutMs: 2_000, firstTokenTimeoutMs: 60_000, idleTimeoutMs: 30_000 };

let client: OllamaClient;
let stub: OllamaStub;

beforeAll(async () => {
  client = new OllamaClient({ host, ...timeouts });
  stub = await startOllamaStub();
});
afterAll(async () => {
  client?.close();
  await stub?.close();
});

describe('resilient client against the real Ollama', () => {
  it('streams a chat as several token chunks and ends with usage counts', async () => {
    const chunks: ChatChunk[] = [];
    for await (const c of client.chat({
      model: chatModel,
      messages: [{ role: 'user', content: 'Name two colours.' }],
      options: { num_predict: 8, temperature: 0 },
    }))
      chunks.push(c);
    const tokens = chunks.filter((c) => !c.done && c.message?.content);
    const final = chunks.at(-1)!;
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(final.done).toBe(true);
    expect(final.prompt_eval_count).toBeGreaterThan(0);
    expect(final.eval_count).toBeGreaterThan(0);
    expect(final.eval_count).toBeLessThanOrEqual(8);
    expect(final.cached).toBeUndefined();
  });

  it('embeds texts into 384-dimension vectors and reports prompt tokens', async () => {
    const res = await client.embed({ model: embedModel, input: ['a red apple', 'a green pear'] });
    expect(res.embeddings).toHaveLength(2);
    expect(res.embeddings[0]).toHaveLength(384);
    expect(res.prompt_eval_count).toBeGreaterThan(0);
  });

  it('reports the version of the first reachable host', async () => {
    const { version } = await client.version();
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('rejects an unknown model as UPSTREAM_REJECTED without retrying or tripping the breaker', async () => {
    const err = await (async () => {
      for await (const _ of client.chat({ model: 'no-such-model:1b', messages: [{ role: 'user', content: 'hi' }] })) void _;
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_REJECTED' });
    expect(client.breaker().state).toBe('closed');
    expect(client.breaker().consecutiveFailures).toBe(0);
  });

  // Regression: Ollama's "invalid JSON schema in format" (inside a 200 stream) was a retryable protocol fault.
  it('rejects a format schema Ollama cannot compile as UPSTREAM_REJECTED, without retrying, naming no host', async () => {
    const retries: unknown[] = [];
    const c = new OllamaClient({ host, ...timeouts, hooks: { onRetry: (e) => retries.push(e) } });
    try {
      const err = await (async () => {
        for await (const _ of c.chat({
          model: chatModel,
          messages: [{ role: 'user', content: 'hi' }],
          format: { type: 'object', properties: { a: { $ref: '#' } } },
          options: { num_predict: 4 },
        }))
          void _;
      })().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UPSTREAM_REJECTED', message: expect.stringMatching(/invalid JSON schema in format/) });
      expect((err as Error).message).not.toContain(new URL(host.includes('://') ? host : `http://${host}`).host);
      expect(retries).toEqual([]);
      expect(c.breaker().consecutiveFailures).toBe(0);
    } finally {
      c.close();
    }
  });
});

describe('keep-alive pooling', () => {
  it('sends sequential requests over one reused connection', async () => {
    const c = new OllamaClient({ host: stub.url, ...timeouts });
    try {
      for (let i = 0; i < 3; i++) {
        for await (const _ of c.chat({ model: 'm', messages: [{ role: 'user', content: `n${i}` }] })) void _;
      }
      const ports = stub.requests.filter((r) => r.path === '/api/chat').map((r) => r.remotePort);
      expect(ports).toHaveLength(3);
      expect(new Set(ports).size).toBe(1);
    } finally {
      c.close();
    }
  });
});
