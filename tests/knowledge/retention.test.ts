/**
 * Forgetting: per-scope TTL and decay, pinning, soft expiry and purge, on the
 * real API, workers, LanceDB and Postgres. An expired item is never returned
 * (search, links, a room's memory); a pin brings a soft-expired item back
 * until the purge, which removes its rows, refs and links for good.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decayOf, expiryOf, withRetention } from '../../platform/knowledge/index.ts';
import { submitJob } from '../../platform/code/index.ts';
import { vectorsMaintain, type KnowledgeItem } from '../../shared/index.ts';
import type { TestUser } from '../harness.ts';
import { until } from '../support/until.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';

describe('retention arithmetic', () => {
  const item = { recordedAt: '2026-01-01T00:00:00.000Z', confirmedAt: null, pinned: false };
  const t0 = Date.parse(item.recordedAt);

  it('expires at the earlier of the TTL and the fade of its decay, never when pinned or without settings', () => {
    expect(expiryOf(item, undefined)).toBeNull();
    expect(expiryOf(item, { ttlSeconds: null, halfLifeSeconds: null })).toBeNull();
    expect(expiryOf(item, { ttlSeconds: 60, halfLifeSeconds: null })).toBe('2026-01-01T00:01:00.000Z');
    // Decay below 0.05 takes log2(20) ≈ 4.32 half-lives.
    const faded = Date.parse(expiryOf(item, { ttlSeconds: null, halfLifeSeconds: 100 })!) - t0;
    expect(Math.abs(faded - 100 * Math.log2(20) * 1000)).toBeLessThanOrEqual(1);
    expect(expiryOf(item, { ttlSeconds: 60, halfLifeSeconds: 100 })).toBe('2026-01-01T00:01:00.000Z');
    expect(expiryOf({ ...item, pinned: true }, { ttlSeconds: 60, halfLifeSeconds: 100 })).toBeNull();
    // A repeat confirms it later: decay counts from then, the TTL from when it was recorded.
    const confirmed = { ...item, confirmedAt: '2026-01-01T01:00:00.000Z' };
    expect(Date.parse(expiryOf(confirmed, { ttlSeconds: null, halfLifeSeconds: 100 })!)).toBe(Date.parse(confirmed.confirmedAt) + faded);
    expect(expiryOf(confirmed, { ttlSeconds: 60, halfLifeSeconds: 100 })).toBe('2026-01-01T00:01:00.000Z');
  });

  it('halves the decay score every half-life, and leaves pinned items and scopes without decay at 1', () => {
    const decaying = { ...item, halfLifeSeconds: 100 };
    expect(decayOf(decaying, t0)).toBe(1);
    expect(decayOf(decaying, t0 + 100_000)).toBeCloseTo(0.5, 10);
    expect(decayOf(decaying, t0 + 300_000)).toBeCloseTo(0.125, 10);
    expect(decayOf({ ...decaying, pinned: true }, t0 + 300_000)).toBe(1);
    expect(decayOf({ ...item, halfLifeSeconds: null }, t0 + 300_000)).toBe(1);
    const full = { ...item, halfLifeSeconds: null, expiresAt: null } as unknown as KnowledgeItem;
    expect(withRetention({ ...full, pinned: true }, { ttlSeconds: 1, halfLifeSeconds: 1 })).toMatchObject({ expiresAt: null, halfLifeSeconds: null });
  });
});

let stack: CodeStack;
let alice: TestUser;
let admin: TestUser;

beforeAll(async () => {
  stack = await startCodeStack({ env: { PARLEY_KNOWLEDGE_PURGE_GRACE_S: '0' } });
  alice = await stack.user('member');
  admin = await stack.user('admin');
}, 120_000);
afterAll(() => stack?.cleanup());

const search = async (q: string, user = alice) => {
  const r = await stack.request('GET', `/v1/knowledge/search?q=${encodeURIComponent(q)}&scope=shared`, { user });
  expect(r.status, r.text).toBe(200);
  return r.json.items as { item: KnowledgeItem; decay: number }[];
};

describe('forgetting on the real stack', () => {
  const text = 'The warehouse in Leeds closes at six. The loading bay in Leeds opens at seven.';
  let items: KnowledgeItem[];
  let sourceId: string;

  it('keeps items forever until a scope has settings', async () => {
    const r = await stack.request('POST', '/v1/knowledge/sources', {
      user: alice,
      body: { source: { kind: 'document', title: 'Leeds', text }, scope: { scope: 'shared' } },
    });
    expect(r.status, r.text).toBe(202);
    sourceId = r.json.source.id;
    expect((await stack.waitForJob(r.json.job.id, alice, 120_000)).state).toBe('completed');
    items = (await search('Leeds warehouse loading bay')).map((h) => h.item);
    expect(items.length).toBe(2);
    for (const i of items) expect(i).toMatchObject({ expiresAt: null, pinned: false, halfLifeSeconds: null });
    expect((await stack.request('GET', '/v1/knowledge/retention', { user: alice })).json.items).toEqual([]);
  });

  it('soft-expires a scope’s items at once when a TTL shorter than their age is set: never returned', async () => {
    // Wait (not assert) until the items are older than the one-second TTL.
    await until('items older than the TTL', () => Date.now() > Date.parse(items[0]!.recordedAt) + 1500);
    const put = await stack.request('PUT', '/v1/knowledge/retention', { user: alice, body: { scope: 'shared', ttlSeconds: 1, halfLifeSeconds: null } });
    expect(put.status, put.text).toBe(200);
    expect(put.json).toMatchObject({ scope: 'shared', room: null, ttlSeconds: 1, halfLifeSeconds: null, itemsUpdated: 2 });
    expect(await search('Leeds warehouse loading bay')).toEqual([]);
    for (const i of items) expect((await stack.request('GET', `/v1/knowledge/items/${encodeURIComponent(i.id)}/links`, { user: alice })).status).toBe(404);
    const list = (await stack.request('GET', '/v1/knowledge/retention', { user: alice })).json.items;
    expect(list).toEqual([expect.objectContaining({ scope: 'shared', ttlSeconds: 1, halfLifeSeconds: null })]);
  });

  it('brings a soft-expired item back with a pin, and lets it expire again when unpinned', async () => {
    const pinned = await stack.request('PUT', `/v1/knowledge/items/${encodeURIComponent(items[0]!.id)}/pin`, { user: alice });
    expect(pinned.status, pinned.text).toBe(200);
    expect(pinned.json).toMatchObject({ id: items[0]!.id, pinned: true, expiresAt: null });
    const found = await search('Leeds warehouse loading bay');
    expect(found.map((h) => h.item.id)).toEqual([items[0]!.id]);
    expect(found[0]!.decay).toBe(1);
    // Nobody else can pin it, or see that it exists.
    const bob = await stack.user('member');
    expect((await stack.request('PUT', `/v1/knowledge/items/${encodeURIComponent(items[1]!.id)}/pin`, { user: bob })).status).toBe(404);
    const unpinned = await stack.request('DELETE', `/v1/knowledge/items/${encodeURIComponent(items[0]!.id)}/pin`, { user: alice });
    expect(unpinned.status).toBe(200);
    expect(unpinned.json.pinned).toBe(false);
    expect(Date.parse(unpinned.json.expiresAt)).toBeLessThanOrEqual(Date.now());
    expect(await search('Leeds warehouse loading bay')).toEqual([]);
  });

  it('decays with a half-life: scores carry the decay, and lifting the TTL brings unpurged items back', async () => {
    const put = await stack.request('PUT', '/v1/knowledge/retention', { user: alice, body: { scope: 'shared', ttlSeconds: null, halfLifeSeconds: 86_400 } });
    expect(put.status).toBe(200);
    expect(put.json.itemsUpdated).toBe(2);
    const hits = await search('Leeds warehouse loading bay');
    expect(hits.map((h) => h.item.id).sort()).toEqual(items.map((i) => i.id).sort());
    for (const h of hits) {
      expect(h.decay).toBeGreaterThan(0.99);
      expect(h.decay).toBeLessThan(1);
      expect(h.item.halfLifeSeconds).toBe(86_400);
      expect(Date.parse(h.item.expiresAt!)).toBeGreaterThan(Date.now());
    }
  });

  it('purges items expired past the grace in vector maintenance: rows, refs and links, for good', async () => {
    const keep = items[1]!;
    expect((await stack.request('PUT', `/v1/knowledge/items/${encodeURIComponent(keep.id)}/pin`, { user: alice })).status).toBe(200);
    expect(
      (await stack.request('PUT', '/v1/knowledge/retention', { user: alice, body: { scope: 'shared', ttlSeconds: 1, halfLifeSeconds: null } })).status,
    ).toBe(200);
    const gone = items[0]!;
    expect(await stack.api.db('knowledge_item_refs').where({ item_id: gone.id })).toHaveLength(1);
    const job = await submitJob({ jobs: stack.api.jobs }, vectorsMaintain, {}, { ownerId: admin.id });
    const done = await stack.waitForJob(job.id, admin, 240_000);
    expect(done.state, JSON.stringify(done.error)).toBe('completed');
    expect(done.result.knowledge.purged).toBeGreaterThanOrEqual(1);
    expect(done.result.knowledge.table).toMatch(/^knowledge_/);
    // Gone: a pin cannot bring it back, its refs and links are deleted, the source counts one item less.
    expect((await stack.request('PUT', `/v1/knowledge/items/${encodeURIComponent(gone.id)}/pin`, { user: alice })).status).toBe(404);
    expect(await stack.api.db('knowledge_item_refs').where({ item_id: gone.id })).toEqual([]);
    expect(await stack.api.db('knowledge_links').where({ from_id: gone.id }).orWhere({ to_id: gone.id })).toEqual([]);
    expect((await stack.request('GET', `/v1/knowledge/sources/${sourceId}`, { user: alice })).json.items).toBe(1);
    // The pinned one stays, and is found.
    expect((await search('Leeds loading bay')).map((h) => h.item.id)).toEqual([keep.id]);
  });

  it('refuses settings that make no sense', async () => {
    for (const body of [
      { scope: 'shared', ttlSeconds: 0, halfLifeSeconds: null },
      { scope: 'room', ttlSeconds: 60, halfLifeSeconds: null },
      { scope: 'shared', room: 'r1', ttlSeconds: 60, halfLifeSeconds: null },
      { scope: 'shared', ttlSeconds: 60 },
      { scope: 'shared', ttlSeconds: 1.5, halfLifeSeconds: null },
      // A NUL cannot be stored in the record: refused at the edge, not a 500.
      { scope: 'room', room: 'r\u0000', ttlSeconds: 60, halfLifeSeconds: null },
      // Past what the record holds (ten years at most).
      { scope: 'shared', ttlSeconds: 100 * 365 * 86_400, halfLifeSeconds: null },
    ]) {
      const r = await stack.request('PUT', '/v1/knowledge/retention', { user: alice, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
    }
  });
});
