/**
 * Response caching end to end: a real API and real workers on the real
 * Ollama, isolated by a key prefix. Deterministic chats and already-seen
 * embedding texts are answered from Redis; `cache: 'bypass'` skips it; a
 * model rebuilt under the same name (new digest) is never answered from the
 * old build's entries.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

const ollama = process.env.OLLAMA_HOST!.replace(/\/+$/, '');
const chatModel = process.env.PARLEY_CHAT_MODEL!;
const nonce = randomUUID().slice(0, 8);

let stack: Stack;
let alice: TestUser;
/** Role caps let members use the configured models only; the rebuilt alias needs an operator. */
let olivia: TestUser;

beforeAll(async () => {
  // Digest looked up on every request, so the rebuilt model is seen at once.
  stack = await startStack({ env: { PARLEY_CACHE_DIGEST_TTL_MS: '0' } });
  alice = await stack.user('member');
  olivia = await stack.user('operator');
});
afterAll(() => stack?.stop());

async function cacheCount(kind: 'chat' | 'embed', outcome: string): Promise<number> {
  const m = await stack.workers!.metrics.cacheRequests.get();
  return m.values.find((v) => v.labels.kind === kind && v.labels.outcome === outcome)?.value ?? 0;
}

async function run(kind: string, input: unknown, user = alice): Promise<any> {
  const r = await stack.request('POST', '/v1/jobs', { user, body: { kind, input } });
  expect(r.status, r.text).toBe(202);
  return stack.waitForJob(r.json.id, user);
}

async function tagsDigest(name: string): Promise<string | undefined> {
  const tags = (await (await fetch(`${ollama}/api/tags`)).json()) as { models: { name: string; digest: string }[] };
  return tags.models.find((m) => m.name === name)?.digest;
}

const chatInput = (content: string, extra: Record<string, unknown> = {}) => ({
  messages: [{ role: 'user', content }],
  options: { num_predict: 4, temperature: 0 },
  ...extra,
});

describe('deterministic chat cache', () => {
  const prompt = `Reply with one word. (${nonce})`;
  let first: any;

  it('answers a repeated temperature-0 llm.chat from the cache: same text, cached, zero usage', async () => {
    first = await run('llm.chat', chatInput(prompt));
    expect(first.state).toBe('completed');
    expect(first.result.cached).toBeUndefined();
    expect(first.usage.completionTokens).toBeGreaterThan(0);
    const hits = await cacheCount('chat', 'hit');

    const second = await run('llm.chat', chatInput(prompt));
    expect(second.state).toBe('completed');
    expect(second.result.cached).toBe(true);
    expect(second.result.text).toBe(first.result.text);
    expect(second.usage).toMatchObject({ promptTokens: 0, completionTokens: 0, estimated: false });
    expect(await cacheCount('chat', 'hit')).toBe(hits + 1);
  });

  it('replays a cached answer to live listeners as one tokens event', async () => {
    const job = await run('llm.chat', chatInput(prompt));
    expect(job.result.cached).toBe(true);
    const sse = await readSse(`${stack.base}/v1/jobs/${job.id}/events`, alice.auth, { timeoutMs: 10_000 });
    const tokens = sse.events.filter((e) => e.event === 'tokens');
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.data.text).toBe(first.result.text);
  });

  it("goes upstream with cache: 'bypass'", async () => {
    const bypassed = await cacheCount('chat', 'bypass');
    const job = await run('llm.chat', chatInput(prompt, { cache: 'bypass' }));
    expect(job.state).toBe('completed');
    expect(job.result.cached).toBeUndefined();
    expect(job.usage.completionTokens).toBeGreaterThan(0);
    expect(await cacheCount('chat', 'bypass')).toBe(bypassed + 1);
  });

  it('does not cache a sampled (temperature > 0, no seed) request', async () => {
    const before = (await cacheCount('chat', 'hit')) + (await cacheCount('chat', 'miss'));
    const job = await run('llm.chat', { messages: [{ role: 'user', content: prompt }], options: { num_predict: 2, temperature: 0.7 } });
    expect(job.state).toBe('completed');
    expect((await cacheCount('chat', 'hit')) + (await cacheCount('chat', 'miss'))).toBe(before);
  });
});

describe('embedding cache', () => {
  it('sends only the texts it has not seen upstream', async () => {
    const [a, b, c, d] = ['apple', 'banana', 'cherry', 'date'].map((w) => `${w} ${nonce}`);
    const [hits0, misses0] = [await cacheCount('embed', 'hit'), await cacheCount('embed', 'miss')];
    const one = await run('embed.batch', { texts: [a, b, c] });
    expect(one.result.cacheHits).toBe(0);
    expect(await cacheCount('embed', 'miss')).toBe(misses0 + 3);

    const two = await run('embed.batch', { texts: [b, c, d] });
    expect(two.state).toBe('completed');
    expect(two.result.cacheHits).toBe(2);
    expect(await cacheCount('embed', 'hit')).toBe(hits0 + 2);
    expect(await cacheCount('embed', 'miss')).toBe(misses0 + 4);
    expect(two.result.embeddings[0]).toEqual(one.result.embeddings[1]);
    expect(two.result.embeddings[1]).toEqual(one.result.embeddings[2]);
    expect(two.result.embeddings[2]).toHaveLength(384);
    // Only "date" was read by the model.
    expect(two.usage.promptTokens).toBeGreaterThan(0);
    expect(two.usage.promptTokens).toBeLessThan(one.usage.promptTokens);
  });
});

describe('invalidation on digest change', () => {
  const alias = `parley-cache-test-${nonce}:latest`;
  afterAll(async () => {
    await fetch(`${ollama}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: alias }) });
  });

  it('misses after the model is rebuilt under the same name, and deletes the old entries', async () => {
    const copied = await fetch(`${ollama}/api/copy`, { method: 'POST', body: JSON.stringify({ source: chatModel, destination: alias }) });
    expect(copied.status).toBe(200);
    const oldDigest = (await tagsDigest(alias))!;
    const input = { model: alias, ...chatInput(`Name a fruit. (${nonce})`) };
    expect((await run('llm.chat', input, olivia)).result.cached).toBeUndefined();
    expect((await run('llm.chat', input, olivia)).result.cached).toBe(true);
    const oldSet = `${stack.prefix}:cache:{${alias}}:keys:${oldDigest}`;
    expect(await stack.api.redis.scard(oldSet)).toBe(1);

    // Same name, different build: a system prompt changes the manifest and so the digest.
    const created = await fetch(`${ollama}/api/create`, {
      method: 'POST',
      body: JSON.stringify({ model: alias, from: chatModel, system: 'You answer in exactly one word.', stream: false }),
    });
    expect(created.status).toBe(200);
    const newDigest = await tagsDigest(alias);
    expect(newDigest).toBeDefined();
    expect(newDigest).not.toBe(oldDigest);

    const after = await run('llm.chat', input, olivia);
    expect(after.state).toBe('completed');
    expect(after.result.cached).toBeUndefined();
    expect(after.usage.completionTokens).toBeGreaterThan(0);
    expect(await stack.api.redis.exists(oldSet)).toBe(0);
    expect(await stack.api.redis.get(`${stack.prefix}:cache:{${alias}}:digest`)).toBe(newDigest);
  });
});

// Issue 16: the cache was shared across users and `cached: true` told one user what another had asked.
// Entries are still shared (the compute is saved), but only one's own entries are reported as hits.
describe('the cache does not tell one user what another asked', () => {
  it("serves another user's chat entry as if computed: same text, no `cached`, the usage it cost", async () => {
    const bob = await stack.user('member');
    const prompt = `Name a colour. ${randomUUID()}`;
    const first = await run('llm.chat', chatInput(prompt));
    const theirs = await run('llm.chat', chatInput(prompt), bob);
    expect(theirs.state).toBe('completed');
    expect(theirs.result.text).toBe(first.result.text);
    expect(theirs.result.cached).toBeUndefined();
    expect(theirs.usage).toMatchObject({ promptTokens: first.usage.promptTokens, completionTokens: first.usage.completionTokens });
    // The one who caused the entry still sees it as a hit.
    expect((await run('llm.chat', chatInput(prompt))).result.cached).toBe(true);
  });

  it("counts another user's embeddings as computed, not as cache hits, with the tokens they cost", async () => {
    const bob = await stack.user('member');
    const texts = ['kiwi', 'lemon'].map((w) => `${w} ${randomUUID()}`);
    const mine = await run('embed.batch', { texts });
    const hitsBefore = await cacheCount('embed', 'hit');
    const theirs = await run('embed.batch', { texts }, bob);
    expect(theirs.result.embeddings).toEqual(mine.result.embeddings);
    expect(theirs.result.cacheHits).toBe(0);
    expect(theirs.usage.promptTokens).toBe(mine.usage.promptTokens);
    // Served from the cache all the same: the operators' metrics count the hits.
    expect(await cacheCount('embed', 'hit')).toBe(hitsBefore + 2);
    expect((await run('embed.batch', { texts })).result.cacheHits).toBe(2);
  });
});
