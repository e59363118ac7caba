/**
 * Knowledge's index generations on the real services (LanceDB in a temporary
 * folder, the catalog in Postgres, Ollama's two models as two embedding
 * spaces). Two stores stand for two processes: one configured with the old
 * model, one with the new.
 *
 * - A model change builds a new generation while the old one serves; writes
 *   made meanwhile (new items, forgets, supersedes) reach both; maintenance
 *   copies the rest and switches; every answer comes from one generation.
 * - When the old model cannot embed in its space any more, the new
 *   generation serves at once and maintenance copies the old items in.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../platform/config.ts';
import { connectDb, type Db } from '../../platform/connections/index.ts';
import { KnowledgeStore, extractSource, scopeKey } from '../../platform/knowledge/index.ts';
import { createOllamaClient, type OllamaClient } from '../../platform/ollama/index.ts';
import { Embedder, createIndexCatalog, openVectorStore, type IndexCatalog, type VectorStore } from '../../platform/vectors/index.ts';
import type { KnowledgeItem, ScopeRef } from '../../shared/index.ts';
import { rebuildKnowledge } from '../../workers/vectors/maintain.ts';

const OLD = 'all-minilm';
const NEW = 'smollm2:135m';
const REFRESH_MS = 300;
const tenant = 'tenant-gen';
const scope: ScopeRef = { scope: 'shared', owner: tenant, room: null };

let dir: string;
let vectors: VectorStore;
let ollama: OllamaClient;
let embedder: Embedder;
let db: Db;

const facts = [
  'The payroll migration starts on Friday.',
  'The audit of the billing service ends in March.',
  'Ada prefers a cortado in the morning.',
  'The atrium is booked for the design review.',
  'The nightly build runs on the second runner.',
  'Version nine of the client drops the old login page.',
];

function items(texts: readonly string[], sourceId: string): KnowledgeItem[] {
  return extractSource({ kind: 'document', title: 't', text: texts.join(' ') }, { sourceId, scope, recordedAt: new Date().toISOString() }).items;
}

const stores = (catalog: IndexCatalog) => ({
  old: new KnowledgeStore({ vectors, embedder, catalog, model: OLD, refreshMs: REFRESH_MS }),
  next: new KnowledgeStore({ vectors, embedder, catalog, model: NEW, refreshMs: REFRESH_MS }),
});
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const idsOf = async (store: KnowledgeStore, which: 'serving' | 'building') => {
  const o = await store.open();
  const t = which === 'serving' ? o.serving.table : o.building[0]!.table;
  return new Set(await t.ids());
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-knowledge-gen-'));
  // No follow-up prunes: one firing between two searches compacts the old generation, and the compaction
  // purges a deleted item from its full-text statistics, so BM25 (and the fused score) moves by a little. That
  // is the store at work, not a pinned view reading another space; the pinned-view check below compares scores.
  vectors = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0, followUpPrunes: 0 } });
  const config = loadConfig(process.env);
  ollama = createOllamaClient(config.ollama);
  embedder = new Embedder(ollama);
  db = connectDb(config.databaseUrl, { pool: 2 });
});
afterAll(async () => {
  vectors?.close();
  ollama?.close();
  await db?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a model change', () => {
  it('builds the new generation while the old one serves, keeps both written, then switches', { timeout: 300_000 }, async () => {
    const catalog = createIndexCatalog(db, `t${randomUUID().slice(0, 8)}`);
    const { old, next } = stores(catalog);
    const first = items(facts, 'src-1');
    expect(first.length).toBe(facts.length);
    await old.forTenant(tenant).upsert(first);
    const before = await old.forTenant(tenant).search({ text: 'when does the payroll migration start', scopes: [scopeKey(first[0]!)], limit: 3 });
    expect(before[0]!.item.text).toBe(facts[0]);

    // A process configured with the new model: its first use starts a build; the old generation still serves.
    const opened = await next.open();
    expect(opened.serving.gen.identity.model).toBe('all-minilm:latest');
    expect(opened.building.map((b) => b.gen.identity.model)).toEqual([NEW]);
    const during = await next.forTenant(tenant).search({ text: 'when does the payroll migration start', scopes: [scopeKey(first[0]!)], limit: 3 });
    expect(during.map((h) => [h.item.id, h.score])).toEqual(before.map((h) => [h.item.id, h.score]));

    // Once every process has read the generations again, their writes reach both.
    await pause(REFRESH_MS + 50);
    const later = items(['The quarterly review moved to the atrium on Tuesday.'], 'src-2');
    await old.forTenant(tenant).upsert(later);
    expect((await idsOf(next, 'building')).has(later[0]!.id)).toBe(true);
    const forgotten = first[3]!;
    await old.forTenant(tenant).delete([scopeKey(forgotten)], [forgotten.id]);
    const superseded = { ...first[2]!, supersededAt: new Date().toISOString() };
    await old.forTenant(tenant).rewrite([superseded]);

    // A job holds one view for its life: this one pinned the old generation before the switch.
    const pinned = old.forTenant(tenant, { pinned: true });
    const pinnedBefore = await pinned.search({ text: 'when does the payroll migration start', scopes: [scopeKey(first[0]!)], limit: 3 });

    // Maintenance copies what the new generation lacks, then switches.
    await pause(2 * REFRESH_MS);
    const r = await rebuildKnowledge({ knowledge: next, catalog, vectors, embedder }, new AbortController().signal);
    expect(r.promoted).toBe(opened.building[0]!.gen.id);
    // Every item but the one written to both meanwhile and the one forgotten was copied.
    expect(r.copied).toBe(first.length - 1);
    next.invalidate();
    const after = await next.open();
    expect(after.serving.gen.id).toBe(r.promoted);
    expect(after.serving.gen.identity).toMatchObject({ model: NEW, dimensions: 576 });
    const want = [...first.filter((i) => i.id !== forgotten.id), ...later].map((i) => i.id).sort();
    expect([...(await idsOf(next, 'serving'))].sort()).toEqual(want);
    // The supersede made during the build holds in the new generation.
    const stored = await next.forTenant(tenant).get([scopeKey(superseded)], [superseded.id]);
    expect(stored[0]!.supersededAt).toBe(superseded.supersededAt);
    // Answers now come from the new space: the query embedded with the new model finds the fact.
    const now = await next.forTenant(tenant).search({ text: 'when does the payroll migration start', scopes: [scopeKey(first[0]!)], limit: 3 });
    expect(now.map((h) => h.item.id)).toContain(first[0]!.id);
    expect(now.map((h) => h.item.id)).not.toContain(forgotten.id);
    // The old generation is retired and, drained (a pass behind the switch found nothing to copy), may go.
    const gens = await catalog.list('knowledge');
    const retired = gens.find((g) => g.state === 'retired')!;
    expect(retired.identity.model).toBe('all-minilm:latest');
    expect(r.drained.has(retired.id)).toBe(true);
    // The pinned view still answers from the old space, exactly as before the switch.
    const pinnedAfter = await pinned.search({ text: 'when does the payroll migration start', scopes: [scopeKey(first[0]!)], limit: 3 });
    expect(pinnedAfter.map((h) => [h.item.id, h.score])).toEqual(pinnedBefore.map((h) => [h.item.id, h.score]));
    // A process still configured with the old model (a rolling deploy) does not bring it back: it uses what serves.
    old.invalidate();
    const stale = await old.open();
    expect(stale.serving.gen.id).toBe(r.promoted);
    expect(stale.building).toEqual([]);
    expect((await catalog.list('knowledge')).map((g) => g.state).sort()).toEqual(['retired', 'serving']);
    expect(await rebuildKnowledge({ knowledge: old, catalog, vectors, embedder }, new AbortController().signal)).toMatchObject({ copied: 0, promoted: null });
  });

  it('copies what changes in the source during the copy: nothing forgotten comes back, nothing rewritten goes stale', { timeout: 300_000 }, async () => {
    const catalog = createIndexCatalog(db, `t${randomUUID().slice(0, 8)}`);
    const { old, next } = stores(catalog);
    const many = items(
      Array.from({ length: 60 }, (_, i) => `Item ${i} of the ledger is owned by team ${i % 7} and due on day ${i + 1}.`),
      'src-many',
    );
    await old.forTenant(tenant).upsert(many);
    const building = (await next.open()).building[0]!;
    await pause(REFRESH_MS + 50);
    // Forgets and supersedes run while the copy runs.
    const churn = (async () => {
      for (const [n, item] of many.entries()) {
        if (n % 5 === 0) await old.forTenant(tenant).delete([scopeKey(item)], [item.id]);
        else if (n % 5 === 1) await old.forTenant(tenant).rewrite([{ ...item, supersededAt: new Date().toISOString() }]);
      }
    })();
    const { copyKnowledge } = await import('../../platform/knowledge/index.ts');
    const serving = (await old.open()).serving;
    await Promise.all([copyKnowledge(serving.table, building, embedder), churn]);
    const src = new Map((await serving.table.rowsById([...(await idsOf(old, 'serving'))])).map((r) => [r.id, r.fields.item]));
    const dst = new Map((await building.table.rowsById(await building.table.ids())).map((r) => [r.id, r.fields.item]));
    expect([...dst.keys()].sort()).toEqual([...src.keys()].sort());
    for (const [id, item] of src) expect(dst.get(id), id).toBe(item);
    expect(src.size).toBe(many.length - 12);
  });
});

describe('a model that no longer embeds in its space', () => {
  it('lets the new generation serve at once, and copies the old items in behind it', { timeout: 300_000 }, async () => {
    const ns = `t${randomUUID().slice(0, 8)}`;
    const catalog = createIndexCatalog(db, ns);
    const { old, next } = stores(catalog);
    const first = items(facts, 'src-gone');
    await old.forTenant(tenant).upsert(first);
    // Its model was pulled again under the same name with other weights: the recorded digest no longer exists.
    const [gen] = await catalog.list('knowledge');
    await db('vector_indexes')
      .where({ id: gen!.id })
      .update({ identity: JSON.stringify({ ...gen!.identity, digest: 'f'.repeat(64) }) as never });

    const opened = await next.open();
    expect(opened.serving.gen.identity.model).toBe(NEW);
    expect(opened.building).toEqual([]);
    expect(opened.retired.length).toBe(1);
    // Until the copy, the new generation has nothing: an empty answer, never one from the old space.
    expect(await next.forTenant(tenant).search({ text: 'payroll migration', scopes: [scopeKey(first[0]!)], limit: 3 })).toEqual([]);
    // A forget reaches the retired table too, so the copy does not bring it back.
    await next.forTenant(tenant).delete([scopeKey(first[1]!)], [first[1]!.id]);

    const r = await rebuildKnowledge({ knowledge: next, catalog, vectors, embedder }, new AbortController().signal);
    expect(r.copied).toBe(first.length - 1);
    // Not drained while a pass still copies; the next one finds nothing left, and then it may go.
    expect(r.drained.has(gen!.id)).toBe(false);
    const again = await rebuildKnowledge({ knowledge: next, catalog, vectors, embedder }, new AbortController().signal);
    expect(again).toMatchObject({ copied: 0, deleted: 0, rewritten: 0 });
    expect(again.drained.has(gen!.id)).toBe(true);
    const hits = await next.forTenant(tenant).search({ text: 'when does the payroll migration start', scopes: [scopeKey(first[0]!)], limit: 3 });
    expect(hits.map((h) => h.item.id)).toContain(first[0]!.id);
    expect(hits.map((h) => h.item.id)).not.toContain(first[1]!.id);
  });
});
