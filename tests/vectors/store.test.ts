/**
 * The vector store on a real LanceDB folder: the analyzer, rank fusion, and
 * the vector table's contract (tests/vectors/table-suite.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeText, minMaxFusion, openVectorStore, reciprocalRankFusion, splitIdentifier } from '../../platform/vectors/index.ts';
import { vectorTableSuite } from './table-suite.ts';

vectorTableSuite('a local folder', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-vectors-'));
  const store = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0 } });
  return {
    store,
    close: async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('analyzer', () => {
  it('splits identifiers on camelCase, acronyms, snake_case and digits', () => {
    expect(splitIdentifier('parseHTTPResponse2')).toEqual(['parse', 'http', 'response', '2']);
    expect(splitIdentifier('snake_case_name')).toEqual(['snake', 'case', 'name']);
    expect(splitIdentifier('$scope')).toEqual(['scope']);
    expect(analyzeText('def get_user_id(self):')).toBe('def getuserid get user id getuser userid self');
    // Sub-identifiers: a query naming `inRange` meets `baseInRange`.
    expect(analyzeText('baseInRange').split(' ')).toEqual(['baseinrange', 'base', 'in', 'range', 'basein', 'inrange']);
  });

  it('gives the same token for an identifier in any casing convention', () => {
    const whole = (s: string) => analyzeText(s).split(' ')[0];
    expect(whole('parse_http_response')).toBe(whole('parseHttpResponse'));
    expect(whole('ParseHTTPResponse')).toBe(whole('parseHttpResponse'));
  });
});

describe('reciprocal rank fusion', () => {
  it('ranks an item found by both lists above items found by one', () => {
    const fused = reciprocalRankFusion([{ items: ['a', 'b', 'c'] }, { items: ['d', 'c', 'e'] }], (x) => x);
    expect(fused[0]!.item).toBe('c');
    expect(fused[0]!.ranks).toEqual([3, 2]);
    expect(fused.map((f) => f.item).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('min-max score fusion', () => {
  // A vector list sure of its first hit, and a text list whose top three are close; d is text-only and far behind.
  const vector = [
    { id: 'a', s: 0.9 },
    { id: 'b', s: 0.3 },
    { id: 'c', s: 0.29 },
  ];
  const text = [
    { id: 'b', s: 5 },
    { id: 'c', s: 4.95 },
    { id: 'a', s: 4.9 },
    { id: 'd', s: 1 },
  ];
  const key = (x: { id: string }) => x.id;

  it('keeps how far apart the scores were, where rank fusion sees only the order', () => {
    const byRank = reciprocalRankFusion([{ items: vector }, { items: text }], key);
    expect(byRank[0]!.item.id).toBe('b');
    const byScore = minMaxFusion([{ items: vector }, { items: text }], key, (x) => x.s);
    expect(byScore.map((f) => f.item.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(byScore[0]!.score).toBeCloseTo(1 + 3.9 / 4, 9);
    expect(byScore[0]!.ranks).toEqual([1, 3]);
    expect(byScore[3]!.ranks).toEqual([null, 4]);
  });

  it('weighs each list, counts an absent item 0 and a list of equal scores 1', () => {
    const fused = minMaxFusion([{ items: vector, weight: 0.02 }, { items: text }], key, (x) => x.s);
    expect(fused.map((f) => f.item.id)).toEqual(['b', 'a', 'c', 'd']);
    expect(fused[3]!.score).toBe(0);
    const flat = minMaxFusion(
      [
        {
          items: [
            { id: 'x', s: 2 },
            { id: 'y', s: 2 },
          ],
        },
      ],
      key,
      (x) => x.s,
    );
    expect(flat.map((f) => f.score)).toEqual([1, 1]);
  });
});

describe('the ANN index', () => {
  // Seeded, so a failure reruns the same data.
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const unit = (d: number) => {
    const v = Array.from({ length: d }, () => rnd() - 0.5);
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };

  it.each(['hnsw_sq', 'ivf_pq'] as const)('is built past the row threshold and answers any limit, close to an exact search (%s)', async (kind) => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-vectors-ann-'));
    const store = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0, vectorIndexMinRows: 500, vectorIndex: kind } });
    try {
      const t = await store.table({ name: `ann_${kind}`, dimensions: 16, fields: { path: 'string' } });
      const rows = Array.from({ length: 1000 }, (_, i) => ({
        id: `r${i}`,
        scope: i % 2 ? 'a' : 'b',
        text: `row ${i}`,
        contentHash: `h${i}`,
        vector: unit(16),
        fields: { path: `p${i}` },
      }));
      await t.upsert(rows);
      const report = await t.maintain();
      expect(report.created).toContain('vector_idx');
      for (const ix of report.indexes) expect(ix.unindexedRows, ix.name).toBe(0);
      let found = 0;
      let wanted = 0;
      for (let q = 0; q < 10; q++) {
        const vector = unit(16);
        // Limits whose candidate lists (limit × the refine factor) pass the HNSW query's default ef.
        for (const limit of [1, 10, 50]) {
          const ann = await t.search({ scopes: ['a', 'b'], mode: 'vector', vector, limit });
          const exact = await t.search({ scopes: ['a', 'b'], mode: 'vector', vector, limit, exact: true });
          expect(ann).toHaveLength(limit);
          const truth = new Set(exact.map((h) => h.id));
          found += ann.filter((h) => truth.has(h.id)).length;
          wanted += limit;
        }
        // A prefilter still fills the page from the filtered rows.
        const scoped = await t.search({ scopes: ['a'], mode: 'vector', vector, limit: 10 });
        expect(scoped.map((h) => h.scope)).toEqual(Array(10).fill('a'));
      }
      console.log(`ANN (${kind}) recall against exact on 1,000 random 16-d rows: ${(found / wanted).toFixed(3)}`);
      expect(found / wanted).toBeGreaterThan(0.8);
    } finally {
      store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a table another process is creating', () => {
  it('is waited for, not reported missing, when its folder is listed before its first version', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-vectors-creating-'));
    const spec = { name: 'creating', dimensions: 4, fields: {} } as const;
    const store = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0 } });
    try {
      // The state of a table mid-creation: its folder, with no version written yet.
      await mkdir(join(dir, 'creating.lance', '_versions'), { recursive: true });
      const opening = store.table(spec);
      await new Promise((r) => setTimeout(r, 300));
      // The creation ends (here: the folder goes and the table is made by another connection).
      await rm(join(dir, 'creating.lance'), { recursive: true, force: true });
      const other = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0 } });
      await other.table(spec);
      other.close();
      const t = await opening;
      expect(await t.count(['s'])).toBe(0);
    } finally {
      store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('schema evolution', () => {
  it('gives a table created before its spec declared a field that field, null in the rows it had', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-vectors-evolve-'));
    const spec = { name: 'evolving', dimensions: 4, fields: { path: 'string' } } as const;
    const row = (id: string, fields: Record<string, string | number | null>) => ({ id, scope: 's', text: id, contentHash: id, vector: [1, 0, 0, 0], fields });
    try {
      const first = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0 } });
      await (await first.table(spec)).upsert([row('old', { path: 'a.ts' })]);
      first.close();

      const second = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0 } });
      const t = await second.table({ ...spec, fields: { ...spec.fields, expires: 'float' } });
      await t.upsert([row('new', { path: 'b.ts', expires: 5 })]);
      const rows = await t.rows(['s']);
      expect(Object.fromEntries(rows.map((r) => [r.id, r.fields.expires]))).toEqual({ old: null, new: 5 });
      // The new field filters, with rows that lack a value passing where asked to.
      expect((await t.rows(['s'], { expires: { gt: 1 } })).map((r) => r.id)).toEqual(['new']);
      expect((await t.rows(['s'], { expires: { gt: 10, orNull: true } })).map((r) => r.id)).toEqual(['old']);
      second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('searches', () => {
  it('log no LanceDB warning in any mode: the distance and the score are selected by name', () => {
    // Before, every vector and text search logged lance's deprecation warning ("did not include
    // `_distance`" / "`_score`"), and `npm start` showed it among the streamed turns.
    const r = spawnSync('npx', ['tsx', 'tests/support/quiet-search.ts'], { encoding: 'utf8', env: { ...process.env, LANCEDB_LOG: 'warn' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['vector 3', 'text 3', 'hybrid 3']);
    expect(r.stderr).not.toMatch(/WARN|Deprecation/);
  });
});

describe('versions a burst of writes leaves', () => {
  it('are removed by the follow-up prunes once they pass the retention, with no further call', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-vectors-followup-'));
    const spec = { name: 'burst', dimensions: 4, fields: { path: 'string' } } as const;
    const row = (id: string, text: string) => ({ id, scope: 's', text, contentHash: text, vector: [1, 0, 0, Number(id)], fields: { path: `${id}.ts` } });
    // The same writes into two stores, one with the follow-ups off: the control shows what the prunes remove.
    const armed = await openVectorStore({ uri: join(dir, 'armed'), maintenance: { versionRetentionMs: 1000 } });
    const control = await openVectorStore({ uri: join(dir, 'control'), maintenance: { versionRetentionMs: 1000, followUpPrunes: 0 } });
    try {
      const tables = await Promise.all([armed.table(spec), control.table(spec)]);
      for (let i = 0; i < 8; i++)
        for (const t of tables) {
          await t.upsert([row(String(i % 3), `rev ${i}`)], { replace: { scope: 's', field: 'path', values: [`${i % 3}.ts`] } });
          await t.maintain();
        }
      const [a, c] = tables;
      // Right after the burst both keep the versions younger than the retention, for reads in flight.
      expect((await a!.stats()).versions).toBeGreaterThan(1);
      expect((await c!.stats()).versions).toBeGreaterThan(1);
      await expect.poll(async () => (await a!.stats()).versions, { timeout: 15_000, interval: 250 }).toBe(1);
      expect((await c!.stats()).versions).toBeGreaterThan(1);
      expect(await a!.count(['s'])).toBe(3);
      expect((await a!.search({ scopes: ['s'], mode: 'text', text: 'rev', limit: 5 })).length).toBe(3);
      // Lance's cleanup leaves an old index's directory behind, empty; maintenance removes those, so later
      // cleanups do not list a growing history. Every index directory left holds files.
      const indices = join(dir, 'armed', 'burst.lance', '_indices');
      const left = await readdir(indices);
      expect(left.length).toBeGreaterThan(0);
      for (const d of left) expect((await readdir(join(indices, d))).length).toBeGreaterThan(0);
    } finally {
      armed.close();
      control.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
