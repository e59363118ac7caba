/**
 * Knowledge reads that need Ollama on the request path (the query embedding)
 * when it cannot answer: the embedding model is not installed. Found by
 * Schemathesis against an Ollama without the model: the answer was a 500.
 * It is a 503 with Retry-After, naming the cause, and never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false, env: { PARLEY_EMBED_MODEL: 'parley-absent-embed:latest' } });
  user = await stack.user('member');
});
afterAll(async () => {
  await stack?.stop();
});

describe('knowledge with the embedding model missing', () => {
  it('answers search and item links with 503 SERVICE_UNAVAILABLE and Retry-After, not 500', async () => {
    for (const path of ['/v1/knowledge/search?q=payroll&limit=5', '/v1/knowledge/items/abc/links']) {
      const r = await stack.request('GET', path, { user });
      expect(r.status, `${path}: ${r.text}`).toBe(503);
      expect(r.json.code).toBe('SERVICE_UNAVAILABLE');
      expect(r.json.detail).toContain('parley-absent-embed');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });
});
