/**
 * The vector table's contract, run on whatever store `open` gives: a local
 * folder (tests/vectors/store.test.ts) or an S3-compatible object store
 * (tests/vectors/object-store.test.ts). Upserts that replace a slice in one
 * commit, scoped prefilters, the search modes, maintenance that leaves no
 * index stale, and version cleanup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VectorRow, VectorStore } from '../../platform/vectors/index.ts';

const dims = 8;

/** A unit vector pointing mostly along axis `axis`, a little along `tilt`. */
function vec(axis: number, tilt = (axis + 1) % dims, amount = 0.1): number[] {
  const v = new Array<number>(dims).fill(0);
  v[axis] = 1;
  v[tilt] = amount;
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function row(scope: string, id: string, text: string, axis: number, fields: Record<string, string | number | null> = {}): VectorRow {
  return { id, scope, text, contentHash: `h:${text}`, vector: vec(axis), fields: { path: 'a.ts', kind: 'function', line: 1, ...fields } };
}

const spec = (name: string) => ({ name, dimensions: dims, fields: { path: 'string', kind: 'string', line: 'int' } as const });

export function vectorTableSuite(label: string, open: () => Promise<{ store: VectorStore; close: () => Promise<void> }>): void {
  let store: VectorStore;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, close } = await open());
  });
  afterAll(async () => {
    await close?.();
  });

  describe(`vector table (${label})`, () => {
    it('replaces one slice of a scope in one commit and leaves the rest alone', async () => {
      const t = await store.table(spec('replace_slice'));
      await t.upsert([
        row('r1', '1', 'alpha', 0, { path: 'a.ts' }),
        row('r1', '2', 'beta', 1, { path: 'a.ts' }),
        row('r1', '3', 'gamma', 2, { path: 'b.ts' }),
        row('r2', '4', 'delta', 3, { path: 'a.ts' }),
      ]);
      const before = await t.raw.version();
      const r = await t.upsert([row('r1', '1', 'alpha two', 0, { path: 'a.ts' })], { replace: { scope: 'r1', field: 'path', values: ['a.ts'] } });
      expect(r).toMatchObject({ updated: 1, deleted: 1, inserted: 0 });
      expect(await t.raw.version()).toBe(before + 1);
      const rows = (await t.rows(['r1', 'r2'])).map((x) => `${x.scope}:${x.id}:${x.text}`).sort();
      expect(rows).toEqual(['r1:1:alpha two', 'r1:3:gamma', 'r2:4:delta']);
    });

    it('stores a batch in which a nullable bool field is null in every row, and reads it back null (not false)', async () => {
      const t = await store.table({ name: 'all_null_bool', dimensions: dims, fields: { ok: 'bool', line: 'int' } });
      const r = (id: string, ok: boolean | null, axis: number): VectorRow => ({
        id,
        scope: 's',
        text: `t${id}`,
        contentHash: `h${id}`,
        vector: vec(axis),
        fields: { ok, line: null },
      });
      await t.upsert([r('1', true, 0)]);
      // An update of that row and an insert, both without a value: the batch's bool column is all null.
      await t.upsert([r('1', null, 0), r('2', null, 1)]);
      await t.upsert([r('3', false, 2)]);
      const got = (await t.rows(['s'])).map((x) => [x.id, x.fields.ok]).sort();
      expect(got).toEqual([
        ['1', null],
        ['2', null],
        ['3', false],
      ]);
    });

    it('deletes every row of a slice when its replacement is empty', async () => {
      const t = await store.table(spec('replace_empty'));
      await t.upsert([row('r1', '1', 'alpha', 0, { path: 'a.ts' }), row('r1', '2', 'beta', 1, { path: 'b.ts' })]);
      const r = await t.upsert([], { replace: { scope: 'r1', field: 'path', values: ['a.ts'] } });
      expect(r.deleted).toBe(1);
      expect((await t.rows(['r1'])).map((x) => x.id)).toEqual(['2']);
    });

    it('searches only the scopes it is given, and nothing for no scope', async () => {
      const t = await store.table(spec('scoped'));
      await t.upsert([row('mine', '1', 'parse the config file', 0), row('theirs', '2', 'parse the config file', 0)]);
      await t.maintain();
      for (const [mode, fuse] of [['vector'], ['text'], ['hybrid'], ['hybrid', 'minmax']] as const) {
        const hits = await t.search({ scopes: ['mine'], mode, fuse, vector: vec(0), text: 'config', limit: 10 });
        expect(hits.map((h) => h.scope)).toEqual(['mine']);
        expect(await t.search({ scopes: [], mode, fuse, vector: vec(0), text: 'config', limit: 10 })).toEqual([]);
      }
    });

    it('applies filters before taking the top k, so a filter never empties the results', async () => {
      const t = await store.table(spec('prefilter'));
      const rows: VectorRow[] = [];
      // 30 near rows of kind "class", 3 far rows of kind "function": the top 10 by distance are all classes.
      for (let i = 0; i < 30; i++) rows.push(row('s', `c${i}`, `render widget ${i}`, 0, { kind: 'class', line: i }));
      for (let i = 0; i < 3; i++) rows.push(row('s', `f${i}`, `render widget far ${i}`, 5, { kind: 'function', line: 100 + i }));
      await t.upsert(rows);
      await t.maintain();
      for (const [mode, fuse] of [['vector'], ['text'], ['hybrid'], ['hybrid', 'minmax']] as const) {
        const hits = await t.search({ scopes: ['s'], mode, fuse, vector: vec(0), text: 'render widget', where: { kind: 'function' }, limit: 10 });
        expect(hits.map((h) => h.id).sort()).toEqual(['f0', 'f1', 'f2']);
      }
      const ranged = await t.search({ scopes: ['s'], mode: 'vector', vector: vec(0), where: { line: { gte: 100 }, path: { prefix: 'a.' } }, limit: 10 });
      expect(ranged).toHaveLength(3);
    });

    it('fuses hybrid lists by their normalised scores on request, each hit with its ranks', async () => {
      const t = await store.table(spec('minmax'));
      // Row 1 is the nearest vector and a fair text match; row 2 the best text match, far away; row 3 neither.
      await t.upsert([row('s', '1', 'open the config file', 0), row('s', '2', 'config config config', 6), row('s', '3', 'render a widget', 3)]);
      await t.maintain();
      const hits = await t.search({ scopes: ['s'], mode: 'hybrid', fuse: 'minmax', vector: vec(0), text: 'config', limit: 10 });
      expect(hits[0]!.id).toBe('1');
      expect(hits.map((h) => h.id).sort()).toEqual(['1', '2', '3']);
      for (const h of hits) expect(h.score).toBeGreaterThanOrEqual(0);
      expect(hits[0]!.score).toBeLessThanOrEqual(2);
      expect(hits.find((h) => h.id === '3')!.ranks).toEqual({ vector: expect.any(Number), text: null });
      expect(hits[0]!.ranks).toEqual({ vector: 1, text: expect.any(Number) });
    });

    it('finds identifiers by their words in text mode', async () => {
      const t = await store.table(spec('identifiers'));
      await t.upsert([row('s', '1', 'function parseHTTPResponse(raw) { return raw }', 0), row('s', '2', 'function renderWidget() {}', 1)]);
      await t.maintain();
      const hits = await t.search({ scopes: ['s'], mode: 'text', text: 'http response', limit: 5 });
      expect(hits[0]?.id).toBe('1');
    });

    it('quotes filter values, so a value cannot change the predicate', async () => {
      const t = await store.table(spec('quoting'));
      await t.upsert([row('s', '1', 'x', 0, { path: "it's.ts" }), row('s', '2', 'y', 1, { path: 'other.ts' })]);
      const hits = await t.search({ scopes: ['s'], mode: 'vector', vector: vec(0), where: { path: "it's.ts" }, limit: 10 });
      expect(hits.map((h) => h.id)).toEqual(['1']);
      const injected = await t.search({ scopes: ['s'], mode: 'vector', vector: vec(0), where: { path: "x' OR '1'='1" }, limit: 10 });
      expect(injected).toEqual([]);
      await expect(t.search({ scopes: ["s') OR (1=1"], mode: 'vector', vector: vec(0), limit: 10 })).resolves.toEqual([]);
    });

    it('refuses a query vector of another dimensionality', async () => {
      const t = await store.table(spec('dims'));
      await t.upsert([row('s', '1', 'x', 0)]);
      await expect(t.search({ scopes: ['s'], mode: 'vector', vector: [1, 0, 0], limit: 3 })).rejects.toThrow(/dimensions/);
    });

    it('never builds a full-text index on an empty table, and leaves no rows unindexed after maintenance', async () => {
      const t = await store.table(spec('maintenance'));
      const empty = await t.maintain();
      expect(empty.created).toEqual([]);
      expect(empty.indexes).toEqual([]);
      await t.upsert([row('s', '1', 'first', 0)]);
      const first = await t.maintain();
      expect(first.created).toContain('search_text_idx');
      await t.upsert([row('s', '2', 'second', 1), row('s', '3', 'third', 2)]);
      const before = await t.indexes();
      expect(before.find((i) => i.name === 'search_text_idx')!.unindexedRows).toBe(2);
      const after = await t.maintain();
      for (const ix of after.indexes) expect(ix.unindexedRows, ix.name).toBe(0);
      expect(after.indexes.find((i) => i.name === 'search_text_idx')!.indexedRows).toBe(3);
    });

    it('finds vectors by content hash across scopes', async () => {
      const t = await store.table(spec('by_hash'));
      await t.upsert([row('a', '1', 'same', 0), row('b', '2', 'same', 0), row('b', '3', 'other', 1)]);
      const found = await t.vectorsByHash(['h:same', 'h:missing']);
      expect([...found.keys()]).toEqual(['h:same']);
      expect(found.get('h:same')!.length).toBe(dims);
    });

    it('keeps table versions bounded by removing those older than the retention', async () => {
      const t = await store.table(spec('versions'));
      for (let i = 0; i < 20; i++) await t.upsert([row('s', String(i % 3), `v${i}`, i % dims)], { replace: { scope: 's', field: 'path', values: ['a.ts'] } });
      const before = await t.stats();
      expect(before.versions).toBeGreaterThan(20);
      await t.maintain();
      const after = await t.stats();
      expect(after.versions).toBeLessThanOrEqual(3);
      expect(after.rows).toBe(1);
      // The next round (past the retention, 0 here) removes the versions the previous one's optimize made.
      await t.upsert([row('s', '9', 'v-last', 1)], { replace: { scope: 's', field: 'path', values: ['a.ts'] } });
      await t.maintain();
      const settled = await t.maintain();
      const s = await t.stats();
      expect(s.versions).toBe(1);
      expect(s.rows).toBe(1);
      expect(settled.versionsRemoved).toBeGreaterThan(0);
    });
  });
}
