/**
 * The leakage suite: knowledge written by one tenant, agent or room is never
 * read by another. Every tenant writes the same kind of statements (one
 * vocabulary, so a foreign item would often be the best match), into private
 * scopes of two agents, two rooms and shared; readers then run seeded random
 * queries with their own readable scopes, and every hit must be one they may
 * see. Also: get and delete by a foreign item's id find nothing, an empty
 * scope list matches nothing, and over HTTP another user's sources, items and
 * search results are invisible (404 or absent).
 *
 * Real LanceDB (a temporary folder) and Ollama's all-minilm; the seed is printed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../platform/config.ts';
import { connectDb, type Db } from '../../platform/connections/index.ts';
import { KnowledgeStore, extractSource, readableScopes, scopeKey } from '../../platform/knowledge/index.ts';
import { createOllamaClient, type OllamaClient } from '../../platform/ollama/index.ts';
import { Embedder, createIndexCatalog, openVectorStore, type VectorStore } from '../../platform/vectors/index.ts';
import type { ScopeRef } from '../../shared/index.ts';
import type { TestUser } from '../harness.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';

const seed = Number(process.env.LEAKAGE_SEED ?? 20261206);
console.log(`leakage suite seed ${seed} (LEAKAGE_SEED to repeat)`);

function rng(s: number) {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

const things = ['deploy window', 'payroll server', 'budget review', 'coffee order', 'launch date', 'backup policy', 'office plant', 'release branch'];
const teams = ['platform team', 'finance group', 'design crew', 'support desk'];
const values = ['Friday', 'ASR1603', 'twelve thousand dollars', 'a cortado', 'the atrium', 'nightly', 'version nine'];
const statement = () => `The ${pick(things)} of the ${pick(teams)} is ${pick(values)}.`;

// Two tenants, one of them with a quote in its id (the prefilter quotes literals).
const tenants = ['tenant-a', "tenant-b' OR '1'='1"];
const agents = ['agent-1', 'agent-2'];
const rooms = ['room-1', 'room-2'];
const scopesOfTenant = (tenant: string): ScopeRef[] => [
  ...agents.map((a) => ({ scope: 'private' as const, owner: a, room: null })),
  ...rooms.map((r) => ({ scope: 'room' as const, owner: agents[0]!, room: r })),
  { scope: 'shared', owner: `${tenant}-user`, room: null },
];

let dir: string;
let vectors: VectorStore;
let ollama: OllamaClient;
let store: KnowledgeStore;
let db: Db;
/** Item id → where it was written. */
const written = new Map<string, { tenant: string; key: string }>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-knowledge-leak-'));
  vectors = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0 } });
  const config = loadConfig(process.env);
  ollama = createOllamaClient(config.ollama);
  db = connectDb(config.databaseUrl, { pool: 2 });
  // A catalog namespace of its own: this file's generations are nobody else's.
  const catalog = createIndexCatalog(db, `t${randomUUID().slice(0, 8)}`);
  store = new KnowledgeStore({ vectors, embedder: new Embedder(ollama), catalog, model: config.ollama.embedModel });
  const recordedAt = new Date().toISOString();
  const batches = tenants.flatMap((tenant) =>
    scopesOfTenant(tenant).map((scope, n) => ({
      tenant,
      scope,
      items: extractSource(
        { kind: 'document', title: 't', text: Array.from({ length: 6 }, statement).join(' ') },
        { sourceId: `${tenant}/${n}`, scope, recordedAt },
      ).items,
    })),
  );
  // One embedding call for every text (Ollama is shared), then one write per tenant and scope.
  const texts = batches.flatMap((b) => b.items.map((i) => i.text));
  const embedded = await store.forTenant(tenants[0]!).embed(texts);
  const byText = new Map(texts.map((t, i) => [t, embedded[i]!]));
  for (const [n, b] of batches.entries()) {
    // The indexes are brought up to date once, with the last write.
    await store.forTenant(b.tenant).upsert(b.items, { vectors: byText, maintain: n === batches.length - 1 });
    for (const item of b.items) written.set(item.id, { tenant: b.tenant, key: scopeKey(b.scope) });
  }
}, 120_000);
afterAll(async () => {
  vectors?.close();
  ollama?.close();
  await db?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('knowledge isolation in the repository', () => {
  const readers = tenants.flatMap((tenant) => agents.map((agent, i) => ({ tenant, agent, scopes: readableScopes({ id: agent, rooms: [rooms[i]!] }) })));

  it('returns no foreign hit to any reader over random queries', async () => {
    let hits = 0;
    const foreign: string[] = [];
    for (let q = 0; q < 16; q++) {
      const reader = pick(readers);
      const text = random() < 0.5 ? statement() : `${pick(things)} ${pick(values)}`;
      for (const h of await store.forTenant(reader.tenant).search({ scopes: reader.scopes, text, limit: 20 })) {
        hits++;
        const w = written.get(h.item.id);
        if (!w || w.tenant !== reader.tenant || !reader.scopes.includes(w.key))
          foreign.push(`${reader.tenant}/${reader.agent} got ${h.item.id} (${w?.tenant} ${w?.key}) for "${text}"`);
      }
    }
    expect(foreign).toEqual([]);
    // Not vacuous: readers found their own items.
    expect(hits).toBeGreaterThan(16);
  });

  it('keeps one agent’s private memory from another agent of the same tenant', async () => {
    const repo = store.forTenant(tenants[0]!);
    const own = [...written].filter(([, w]) => w.tenant === tenants[0] && w.key === 'private:agent-2').map(([id]) => id);
    expect(own.length).toBeGreaterThan(0);
    const agent1 = readableScopes({ id: 'agent-1', rooms: ['room-1'] });
    expect(await repo.get(agent1, own)).toEqual([]);
    expect(await repo.get(readableScopes({ id: 'agent-2', rooms: [] }), own)).toHaveLength(own.length);
  });

  it('finds nothing by a foreign item’s id, and deletes nothing of it', async () => {
    const foreignIds = [...written].filter(([, w]) => w.tenant === tenants[1]).map(([id]) => id);
    const everyKey = [...new Set([...written.values()].map((w) => w.key))];
    const intruder = store.forTenant(tenants[0]!);
    expect(await intruder.get(everyKey, foreignIds)).toEqual([]);
    expect(await intruder.delete(everyKey, foreignIds)).toBe(0);
    expect(await store.forTenant(tenants[1]!).get(everyKey, foreignIds)).toHaveLength(foreignIds.length);
  });

  it('matches nothing with an empty scope list', async () => {
    const repo = store.forTenant(tenants[0]!);
    expect(await repo.search({ scopes: [], text: statement(), limit: 10 })).toEqual([]);
    expect(await repo.get([], [...written.keys()])).toEqual([]);
    expect(await repo.count([])).toBe(0);
  });
});

describe('knowledge isolation over HTTP', () => {
  let stack: CodeStack;
  let alice: TestUser;
  let bob: TestUser;
  let source: string;

  beforeAll(async () => {
    stack = await startCodeStack();
    [alice, bob] = await Promise.all([stack.user('member'), stack.user('member')]);
    const r = await stack.request('POST', '/v1/knowledge/sources', {
      user: alice,
      body: { source: { kind: 'document', title: 'secret', text: 'The vault code of the finance group is ASR1603.' }, scope: { scope: 'shared' } },
    });
    expect(r.status, r.text).toBe(202);
    source = r.json.source.id;
    expect((await stack.waitForJob(r.json.job.id, alice, 120_000)).state).toBe('completed');
  }, 180_000);
  afterAll(() => stack?.cleanup());

  it('hides another user’s sources, items and search hits', async () => {
    const mine = await stack.request('GET', '/v1/knowledge/search?q=vault%20code%20finance', { user: alice });
    expect(mine.json.items.map((h: any) => h.item.text)).toEqual(['The vault code of the finance group is ASR1603.']);
    const itemId = mine.json.items[0].item.id;
    for (const scope of ['', '&scope=shared', '&scope=private', '&scope=room&room=r1']) {
      const r = await stack.request('GET', `/v1/knowledge/search?q=vault%20code%20finance${scope}`, { user: bob });
      expect(r.status, r.text).toBe(200);
      expect(r.json.items).toEqual([]);
    }
    expect((await stack.request('GET', `/v1/knowledge/sources/${source}`, { user: bob })).status).toBe(404);
    expect((await stack.request('GET', '/v1/knowledge/sources', { user: bob })).json.items).toEqual([]);
    expect((await stack.request('GET', `/v1/knowledge/items/${encodeURIComponent(itemId)}/links`, { user: bob })).status).toBe(404);
    expect((await stack.request('DELETE', `/v1/knowledge/sources/${source}`, { user: bob })).status).toBe(404);
    expect((await stack.request('GET', `/v1/knowledge/sources/${source}`, { user: alice })).json.status).toBe('ready');
  });

  it('lets a viewer read but not add sources', async () => {
    const viewer = await stack.user('viewer');
    expect((await stack.request('GET', '/v1/knowledge/search?q=anything', { user: viewer })).status).toBe(200);
    expect((await stack.request('POST', '/v1/knowledge/sources', { user: viewer, body: { source: { kind: 'document', title: 't', text: 'x' } } })).status).toBe(
      403,
    );
  });
});
