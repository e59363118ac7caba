/**
 * Search modes, filters and who may read what. Filters are prefilters, so
 * a filter that excludes the best matches still returns a full page of the
 * rest; a repository you may not read is never searched, and naming one is
 * 404, as is reading it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../harness.ts';
import { createRepo, indexRepo, sampleProject, startCodeStack, treeArchive, upload, type CodeStack } from './support.ts';

let stack: CodeStack;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let op: TestUser;
let mine: string;
let shared: string;
let open: string;

/** Many small functions that all talk about the same thing, in two languages, plus a Python one at the end. */
function manyFunctions(): Record<string, string> {
  const ts = Array.from(
    { length: 30 },
    (_, i) =>
      `/** Formats the currency amount number ${i}. */\nexport function formatAmount${i}(value: number): string {\n  return value.toFixed(${i % 4});\n}\n`,
  ).join('\n');
  const py = Array.from(
    { length: 12 },
    (_, i) => `def format_amount_${i}(value):\n    """Format the currency amount number ${i}."""\n    return f"{value:.${i % 4}f}"\n`,
  ).join('\n\n');
  return { 'src/format.ts': ts, 'py/format.py': py };
}

beforeAll(async () => {
  stack = await startCodeStack();
  [alice, bob, carol, op] = await Promise.all([stack.user('member'), stack.user('member'), stack.user('member'), stack.user('operator')]);
  mine = await createRepo(stack, alice, 'mine');
  shared = await createRepo(stack, alice, 'shared', { visibility: 'shared', sharedWith: [bob.id] });
  open = await createRepo(stack, carol, 'open', { visibility: 'public' });
  for (const [id, user, files] of [
    [mine, alice, manyFunctions()],
    [shared, alice, sampleProject()],
    [open, carol, sampleProject()],
  ] as const) {
    expect((await upload(stack, user, id, treeArchive(files))).status).toBe(200);
    expect((await indexRepo(stack, user, id)).state).toBe('completed');
  }
});
afterAll(async () => {
  // Public repositories stay visible to every user of the database: remove this suite's.
  await stack?.request('DELETE', `/v1/code/repositories/${open}`, { user: carol }).catch(() => {});
  await stack?.cleanup();
});

const search = (user: TestUser, params: Record<string, string | number>) =>
  stack.request('GET', `/v1/code/search?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))}`, { user });

describe('modes and filters', () => {
  it('runs each mode and says which ran, from one index', async () => {
    for (const mode of ['vector', 'text', 'hybrid']) {
      const r = await search(alice, { q: 'format a currency amount', mode, repository: mine, limit: 5 });
      expect(r.status).toBe(200);
      expect(r.json.mode).toBe(mode);
      expect(r.json.index.identity.model).toBe('all-minilm:latest');
      expect(r.json.items).toHaveLength(5);
      expect(r.json.items.every((h: any) => h.repository === mine)).toBe(true);
      const scores = r.json.items.map((h: any) => h.score);
      expect(scores).toEqual([...scores].sort((a: number, b: number) => b - a));
    }
  });

  it('prefilters by language, so the filtered-out majority never crowds the page', async () => {
    for (const mode of ['vector', 'text', 'hybrid']) {
      const r = await search(alice, { q: 'format a currency amount', mode, repository: mine, language: 'python', limit: 10 });
      expect(r.json.items, mode).toHaveLength(10);
      expect(r.json.items.every((h: any) => h.language === 'python' && h.path === 'py/format.py')).toBe(true);
    }
  });

  it('prefilters by path prefix and by kind', async () => {
    const byPath = await search(alice, { q: 'format amount', repository: mine, path: 'py/', limit: 50 });
    expect(byPath.json.items.length).toBeGreaterThanOrEqual(12);
    expect(byPath.json.items.every((h: any) => h.path.startsWith('py/'))).toBe(true);
    const byKind = await search(alice, { q: 'inventory', repository: shared, kind: 'class', limit: 10 });
    expect(byKind.json.items[0]).toMatchObject({ kind: 'class', symbol: 'Inventory' });
    // Only two classes exist in that repository, and a page of ten holds both, nothing else.
    expect(byKind.json.items.map((h: any) => h.symbol).sort()).toEqual(['Inventory', 'RetryingClient']);
  });

  it('validates the query', async () => {
    expect((await search(alice, { q: '' })).status).toBe(400);
    expect((await search(alice, { q: 'x', mode: 'fuzzy' })).status).toBe(400);
    expect((await search(alice, { q: 'x', limit: 1000 })).status).toBe(400);
    expect((await search(alice, { q: 'x', repository: 'not-a-uuid' })).status).toBe(400);
    expect((await search(alice, { q: 'x', kind: 'interface' })).status).toBe(400);
  });
});

describe('who may read what', () => {
  it('searches only what the caller may read', async () => {
    const everything = { q: 'inventory warehouse items', mode: 'text', limit: 50 };
    const seen = async (u: TestUser) => new Set((await search(u, everything)).json.items.map((h: any) => h.repository));
    expect(await seen(alice)).toEqual(new Set([shared, open]));
    expect(await seen(bob)).toEqual(new Set([shared, open]));
    const dave = await stack.user('member');
    expect(await seen(dave)).toEqual(new Set([open]));
    expect(await seen(op)).toEqual(new Set([shared, open]));
    const all = await search(op, { q: 'currency amount', mode: 'text', limit: 5 });
    expect(all.json.items.every((h: any) => h.repository === mine)).toBe(true);
  });

  it('takes a repository id in any letter case, once however often it is named, and refuses a list that names none', async () => {
    const twice = await search(alice, { q: 'format a currency amount', mode: 'text', repository: `${mine},${mine.toUpperCase()}`, limit: 5 });
    expect(twice.status, twice.text).toBe(200);
    expect(twice.json.items.length).toBeGreaterThan(0);
    expect(twice.json.items.every((h: any) => h.repository === mine)).toBe(true);
    const none = await search(alice, { q: 'x', repository: ', ,' });
    expect(none.status).toBe(400);
    expect(none.json.errors[0].path).toBe('query.repository');
  });

  it('answers 404 for a repository the caller may not read, when named or fetched', async () => {
    expect((await search(bob, { q: 'x', repository: mine })).status).toBe(404);
    expect((await search(bob, { q: 'x', repository: `${shared},${mine}` })).status).toBe(404);
    expect((await stack.request('GET', `/v1/code/repositories/${mine}`, { user: bob })).status).toBe(404);
    expect((await stack.request('GET', `/v1/code/repositories/${mine}/symbols?name=formatAmount1`, { user: bob })).status).toBe(404);
    expect((await stack.request('GET', `/v1/code/repositories/${shared}`, { user: bob })).status).toBe(200);
  });

  it('lets readers read but only owners (and operators) change', async () => {
    expect((await stack.request('POST', `/v1/code/repositories/${shared}/index`, { user: bob })).status).toBe(403);
    expect((await stack.request('DELETE', `/v1/code/repositories/${open}`, { user: alice })).status).toBe(403);
    const viewer = await stack.user('viewer');
    expect((await search(viewer, { q: 'slugify' })).status).toBe(200);
    expect((await stack.request('POST', '/v1/code/repositories', { user: viewer, body: { name: 'v', source: { type: 'archive' } } })).status).toBe(403);
  });

  it('lists only readable repositories', async () => {
    // Public repositories of other suites sharing the database are listed too: look at this suite's only.
    const ours = new Set([mine, shared, open]);
    const names = (u: TestUser) =>
      stack.request('GET', '/v1/code/repositories', { user: u }).then((r) =>
        r.json.items
          .filter((x: any) => ours.has(x.id))
          .map((x: any) => x.name)
          .sort(),
      );
    expect(await names(bob)).toEqual(['open', 'shared']);
    expect(await names(alice)).toEqual(['mine', 'open', 'shared']);
  });
});

describe('symbols', () => {
  it('looks definitions up by name, qualified name and prefix', async () => {
    const exact = await stack.request('GET', `/v1/code/repositories/${shared}/symbols?name=add_item`, { user: alice });
    expect(exact.json.items).toHaveLength(1);
    expect(exact.json.items[0]).toMatchObject({
      path: 'tools/inventory.py',
      name: 'add_item',
      qualifiedName: 'Inventory.add_item',
      kind: 'method',
      parent: 'Inventory',
      signature: 'def add_item(self, name, quantity=1)',
      docstring: 'Add a quantity of an item to the stock.',
      span: { startLine: 11, endLine: 13 },
      imports: [
        { module: 'json', names: [] },
        { module: 'collections', names: ['Counter'] },
      ],
    });
    const qualified = await stack.request('GET', `/v1/code/repositories/${shared}/symbols?name=RetryingClient.parseHttpResponse`, { user: alice });
    expect(qualified.json.items.map((s: any) => s.kind)).toEqual(['method']);
    const prefix = await stack.request('GET', `/v1/code/repositories/${mine}/symbols?name=formatAmount1*&kind=function`, { user: alice });
    expect(prefix.json.items.map((s: any) => s.name).sort()).toEqual(['formatAmount1', ...Array.from({ length: 10 }, (_, i) => `formatAmount1${i}`)].sort());
    const iface = await stack.request('GET', `/v1/code/repositories/${shared}/symbols?name=point`, { user: alice });
    expect(iface.json.items[0]).toMatchObject({ kind: 'interface', name: 'Point' });
  });
});
