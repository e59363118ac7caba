/**
 * Retrieval quality: the libraries indexed through the product (upload,
 * code.index job), their docstring queries run through the product's search
 * in each mode, scored on the test split with bootstrap intervals; the
 * fusion settings and the full-text options chosen on the dev split.
 */
import { randomUUID } from 'node:crypto';
import * as lancedb from '@lancedb/lancedb';
import { analyzeText, Embedder, sqlString, type VectorRow } from '../../platform/vectors/index.ts';
import { codeTableSpec, defaultFusion, type Fusion } from '../../platform/code/index.ts';
import { extractSource } from '../../workers/code/extract.ts';
import { buildCorpus, relevant, type Corpus, type Query } from './corpus.ts';
import { libraries } from './libraries.ts';
import { bootstrap, metrics, metricNames, pairedDifference, type MetricSet, type PerQuery } from './metrics.ts';
import type { BenchStack } from './stack.ts';
import { treeArchive } from './tar.ts';

export interface IndexedCorpus {
  corpus: Corpus;
  repo: string;
  job: { durationMs: number; chunks: number; embedded: number };
}

export interface QualityOutcome {
  lines: string[];
  verdicts: string[];
  indexed: IndexedCorpus[];
  queries: Query[];
  vectors: Map<string, Float32Array>;
  fusion: Fusion;
}

const f3 = (x: number) => x.toFixed(3);
const ci = (c: [number, number]) => `[${f3(c[0])}, ${f3(c[1])}]`;

export async function indexCorpus(stack: BenchStack, corpus: Corpus, name: string): Promise<IndexedCorpus> {
  const created = await stack.request('POST', '/v1/code/repositories', { body: { name, source: { type: 'archive' } } });
  if (created.status !== 201) throw new Error(`create repository: ${created.status} ${created.text}`);
  const repo = created.json.id as string;
  const up = await stack.request('PUT', `/v1/code/repositories/${repo}/archive`, { raw: treeArchive(corpus.files) });
  if (up.status !== 200) throw new Error(`upload: ${up.status} ${up.text}`);
  const submitted = await stack.request('POST', `/v1/code/repositories/${repo}/index`);
  const job = await stack.waitJob(submitted.json.id);
  if (job.state !== 'completed') throw new Error(`index job ${job.state}: ${job.error_message}`);
  const r = job.result as { chunks: number; chunksEmbedded: number };
  return { corpus, repo, job: { durationMs: job.finished_at.getTime() - job.started_at.getTime(), chunks: r.chunks, embedded: r.chunksEmbedded } };
}

async function rankOf(
  stack: BenchStack,
  q: Query,
  repo: string,
  mode: 'vector' | 'text' | 'hybrid',
  vector: Float32Array,
  fusion?: Partial<Fusion>,
): Promise<PerQuery> {
  const res = await stack.api.code.search({ q: q.text, mode, repositoryIds: [repo], limit: 10, vector, ...(fusion ? { fusion } : {}) });
  const i = res.items.findIndex((h) => relevant(q, h));
  return { rank: i < 0 ? null : i + 1 };
}

function row(label: string, m: MetricSet, c?: ReturnType<typeof bootstrap>): string {
  return `  ${label.padEnd(26)} n=${String(m.n).padStart(3)}  ${metricNames.map((k) => `${k} ${f3(m[k])}${c ? ` ${ci(c[k])}` : ''}`).join('  ')}`;
}

export async function runQuality(stack: BenchStack, seed: number, log: (s: string) => void): Promise<QualityOutcome> {
  const lines: string[] = [];
  const verdicts: string[] = [];
  const out = (s: string) => {
    lines.push(s);
    log(s);
  };
  const corpora = [buildCorpus(libraries.lodash), buildCorpus(libraries.moreItertools)];
  for (const c of corpora) {
    const q = c.queries;
    out(
      `corpus ${c.library.name} ${c.library.version} (${c.library.language}): ${Object.keys(c.files).length} files; ${q.length} queries (${q.filter((x) => x.split === 'test').length} test, ${q.filter((x) => x.split === 'dev').length} dev; ${q.filter((x) => x.containsName).length} contain their function's name); dropped ${c.dropped.short} under 4 words, ${c.dropped.duplicate} shared by several definitions`,
    );
  }
  const indexed: IndexedCorpus[] = [];
  for (const c of corpora) {
    log(`indexing ${c.library.name} through POST /v1/code/repositories/:id/index …`);
    const ix = await indexCorpus(stack, c, `${c.library.name}-stripped`);
    indexed.push(ix);
    out(
      `indexed ${c.library.name}: ${ix.job.chunks} chunks, ${ix.job.embedded} embedded, ${(ix.job.durationMs / 1000).toFixed(1)} s (${(ix.job.embedded / (ix.job.durationMs / 1000)).toFixed(1)} chunks/s)`,
    );
  }
  const repoOf = new Map(indexed.map((i) => [i.corpus.library.name, i.repo]));
  const queries = indexed.flatMap((i) => i.corpus.queries);
  const embedder = new Embedder(stack.api.ollama);
  const texts = [...new Set(queries.map((q) => q.text))];
  log(`embedding ${texts.length} queries …`);
  const { vectors: qv } = await embedder.embed('all-minilm', texts, { batchSize: 32 });
  const vectors = new Map(texts.map((t, i) => [t, qv[i]!]));
  const run = async (qs: Query[], mode: 'vector' | 'text' | 'hybrid', fusion?: Partial<Fusion>) => {
    const res: PerQuery[] = [];
    for (const q of qs) res.push(await rankOf(stack, q, repoOf.get(q.library)!, mode, vectors.get(q.text)!, fusion));
    return res;
  };
  const dev = queries.filter((q) => q.split === 'dev');
  const test = queries.filter((q) => q.split === 'test');

  // Fusion settings, chosen on dev: the name boost by text search; then the RRF constant, the chunk
  // vectors' weight beside the name vectors, and the text list's weight, by hybrid search (the default mode).
  log('tuning on the dev split …');
  let nameBoost = 1;
  let bestText = -1;
  const textGrid: string[] = [];
  for (const boost of [1, 2, 4, 8]) {
    const m = metrics(await run(dev, 'text', { nameBoost: boost })).mrr10;
    textGrid.push(`name boost ${boost}: ${f3(m)}`);
    if (m > bestText + 1e-9) [bestText, nameBoost] = [m, boost];
  }
  out(`dev MRR@10 of text search by name boost: ${textGrid.join('; ')}`);
  const vectorGrid: string[] = [];
  // The chunk vectors keep a weight of at least 0.25 by rule (platform/code/search.ts says why).
  let vectorBest: { k: number; chunk: number; mrr: number } | undefined;
  for (const k of [5, 10, 30, 60]) {
    for (const chunk of [0, 0.25, 0.5, 1]) {
      const m = metrics(await run(dev, 'vector', { k, vectors: { name: 1, chunk } })).mrr10;
      vectorGrid.push(`k=${k} chunk=${chunk}: ${f3(m)}`);
      if (chunk >= 0.25 && (!vectorBest || m > vectorBest.mrr + 1e-9)) vectorBest = { k, chunk, mrr: m };
    }
  }
  out(`dev MRR@10 of vector search by RRF constant and chunk-vector weight (name vectors weigh 1): ${vectorGrid.join('; ')}`);
  let best: { fusion: Fusion; mrr: number } | undefined;
  const grid: string[] = [];
  // Hybrid by rank (RRF, each constant) and by normalised scores (min-max), the same rule for the chunk vectors.
  for (const method of [5, 10, 30, 60, 'minmax'] as const) {
    for (const chunk of [0.25, 0.5, 0.75, 1]) {
      for (const text of [0.25, 0.5, 0.75, 1, 1.5]) {
        const hybrid: Fusion['hybrid'] =
          method === 'minmax'
            ? { method, k: defaultFusion.hybrid.k, vectors: { name: 1, chunk }, text }
            : { method: 'rrf', k: method, vectors: { name: 1, chunk }, text };
        const fusion: Fusion = { k: vectorBest!.k, vectors: { name: 1, chunk: vectorBest!.chunk }, hybrid, nameBoost, depth: 4 };
        const m = metrics(await run(dev, 'hybrid', fusion)).mrr10;
        grid.push(`${method === 'minmax' ? 'minmax' : `rrf k=${method}`} chunk=${chunk} text=${text}: ${f3(m)}`);
        if (!best || m > best.mrr + 1e-9) best = { fusion, mrr: m };
      }
    }
  }
  out(`dev MRR@10 of hybrid search: ${grid.join('; ')}`);
  const b = best!.fusion;
  out(
    `chosen on dev: vector search RRF k=${b.k}, name/chunk weights ${b.vectors.name}/${b.vectors.chunk}; hybrid ${b.hybrid.method === 'minmax' ? 'min-max score fusion' : `RRF k=${b.hybrid.k}`}, name/chunk/text weights ${b.hybrid.vectors.name}/${b.hybrid.vectors.chunk}/${b.hybrid.text}; name boost ${b.nameBoost} (dev MRR@10 ${f3(best!.mrr)}); platform/code/search.ts ships: ${JSON.stringify(defaultFusion)}`,
  );

  // The test split, each mode.
  log('scoring the test split …');
  const results = {
    text: await run(test, 'text'),
    vector: await run(test, 'vector'),
    hybridDefault: await run(test, 'hybrid'),
    hybrid: await run(test, 'hybrid', best!.fusion),
    textTuned: await run(test, 'text', best!.fusion),
    vectorTuned: await run(test, 'vector', best!.fusion),
  };
  out(`test split (${test.length} queries), seed ${seed}, bootstrap 95% intervals over queries (2000 resamples):`);
  const ms: Record<string, MetricSet> = {};
  for (const [name, r] of Object.entries(results)) {
    ms[name] = metrics(r);
    const label = {
      text: 'text (shipped)',
      vector: 'vector (shipped)',
      hybridDefault: 'hybrid (shipped)',
      hybrid: 'hybrid (tuned on dev)',
      textTuned: 'text (tuned on dev)',
      vectorTuned: 'vector (tuned on dev)',
    }[name]!;
    out(row(label, ms[name]!, bootstrap(r, seed)));
  }
  for (const [label, pick] of [
    ['without their name', (q: Query) => !q.containsName],
    ['containing their name', (q: Query) => q.containsName],
  ] as const) {
    out(`  queries ${label}:`);
    for (const [name, r] of Object.entries(results)) {
      const sub = r.filter((_, i) => pick(test[i]!));
      if (sub.length) out(row(`  ${name}`, metrics(sub)));
    }
  }
  for (const c of corpora) {
    const pick = (q: Query) => q.library === c.library.name;
    out(
      `  ${c.library.name} only: ${Object.entries(results)
        .map(([name, r]) => `${name} MRR@10 ${f3(metrics(r.filter((_, i) => pick(test[i]!))).mrr10)}`)
        .join(', ')}`,
    );
  }

  const hybridMrr = ms.hybridDefault!.mrr10;
  const bestSingle = Math.max(ms.text!.mrr10, ms.vector!.mrr10);
  const vsBest = pairedDifference(results.hybridDefault, ms.text!.mrr10 >= ms.vector!.mrr10 ? results.text : results.vector, seed);
  verdicts.push(
    `hybrid MRR@10 ${f3(hybridMrr)} vs max(text ${f3(ms.text!.mrr10)}, vector ${f3(ms.vector!.mrr10)}) + 0.05 = ${f3(bestSingle + 0.05)}: ${hybridMrr >= bestSingle + 0.05 ? 'PASS' : 'MISS'} (paired difference ${f3(vsBest.mean)}, 95% ${ci(vsBest.ci)})`,
  );
  verdicts.push(`hybrid MRR@10 ${f3(hybridMrr)} ≥ 0.60: ${hybridMrr >= 0.6 ? 'PASS' : 'MISS'}`);

  // The full-text analyzer against a plain tokenizer, on the same rows.
  const tokenizerLines = await compareTokenizers(stack, indexed, dev, test, seed);
  for (const l of tokenizerLines.lines) out(l);
  verdicts.push(tokenizerLines.verdict);
  return { lines, verdicts, indexed, queries, vectors, fusion: best!.fusion };
}

/**
 * Four copies of the indexed rows, each with its own full-text column and
 * index: the code-aware analyzer or the raw text (LanceDB's simple
 * tokenizer alone), each with and without stemming. Dev picks the stemming;
 * test compares the analyzers at that setting.
 */
async function compareTokenizers(
  stack: BenchStack,
  indexed: IndexedCorpus[],
  dev: Query[],
  test: Query[],
  seed: number,
): Promise<{ lines: string[]; verdict: string }> {
  const gen = await stack.api.code.catalog.serving('code');
  const source = await stack.api.vectors.table(codeTableSpec(gen!));
  const repos = indexed.map((i) => i.repo);
  const rows = await source.rows(repos, undefined, { withVectors: true });
  const model = await new Embedder(stack.api.ollama).describe('all-minilm');
  const headers = new Map<string, string>();
  for (const ix of indexed) {
    for (const [path, content] of Object.entries(ix.corpus.files)) {
      for (const c of extractSource({ path, content }, { maxTokens: 254, tokenizer: model.tokenizer }).chunks) headers.set(c.contentHash, c.header);
    }
  }
  const repoOf = new Map(indexed.map((i) => [i.corpus.library.name, i.repo]));
  const variants = [
    { name: 'code-aware, stemmed', analyze: true, stem: true },
    { name: 'code-aware, unstemmed', analyze: true, stem: false },
    { name: 'plain, stemmed', analyze: false, stem: true },
    { name: 'plain, unstemmed', analyze: false, stem: false },
  ];
  const lines: string[] = [];
  const scored: Record<string, { dev: PerQuery[]; test: PerQuery[] }> = {};
  const tables: string[] = [];
  for (const v of variants) {
    const name = `bench_fts_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    tables.push(name);
    const t = await stack.api.vectors.table({ ...codeTableSpec({ tableName: name, identity: gen!.identity }) });
    const copies: VectorRow[] = rows.map((r) => {
      const raw = `${headers.get(r.contentHash) ?? ''}\n${r.text}`;
      return {
        id: r.id,
        scope: r.scope,
        text: r.text,
        contentHash: r.contentHash,
        vector: r.vector!,
        vectors: r.vectors,
        texts: { name_text: '' },
        searchText: v.analyze ? analyzeText(raw) : raw,
        fields: r.fields as VectorRow['fields'],
      };
    });
    for (let i = 0; i < copies.length; i += 2000) await t.upsert(copies.slice(i, i + 2000));
    await t.raw.createIndex('search_text', {
      config: lancedb.Index.fts({ baseTokenizer: 'simple', lowercase: true, stem: v.stem, removeStopWords: false, asciiFolding: true, withPosition: false }),
    });
    const rank = async (q: Query): Promise<PerQuery> => {
      const text = v.analyze ? analyzeText(q.text) : q.text;
      const hits = await t.raw
        .query()
        .fullTextSearch(text, { columns: 'search_text' })
        .where(`scope = ${sqlString(repoOf.get(q.library)!)}`)
        .select(['path', 'kind', 'start_line', 'end_line'])
        .limit(10)
        .toArray();
      const i = hits.findIndex((h: Record<string, unknown>) =>
        relevant(q, { path: h.path as string, kind: h.kind as string, startLine: h.start_line as number, endLine: h.end_line as number }),
      );
      return { rank: i < 0 ? null : i + 1 };
    };
    const d: PerQuery[] = [];
    for (const q of dev) d.push(await rank(q));
    const te: PerQuery[] = [];
    for (const q of test) te.push(await rank(q));
    scored[v.name] = { dev: d, test: te };
    lines.push(`full-text ${v.name}: dev MRR@10 ${f3(metrics(d).mrr10)}, test MRR@10 ${f3(metrics(te).mrr10)}`);
  }
  for (const name of tables) await stack.api.vectors.dropTable(name);
  const stem = metrics(scored['code-aware, stemmed']!.dev).mrr10 >= metrics(scored['code-aware, unstemmed']!.dev).mrr10;
  const ours = scored[`code-aware, ${stem ? 'stemmed' : 'unstemmed'}`]!.test;
  const plain = scored[`plain, ${stem ? 'stemmed' : 'unstemmed'}`]!.test;
  const d = pairedDifference(ours, plain, seed);
  lines.push(`stemming chosen on dev: ${stem ? 'on' : 'off'}`);
  return {
    lines,
    verdict: `code-aware tokenizer beats a plain one on text search (test MRR@10 ${f3(metrics(ours).mrr10)} vs ${f3(metrics(plain).mrr10)}, difference ${f3(d.mean)}, 95% ${ci(d.ci)}): ${d.ci[0] > 0 ? 'PASS' : d.mean > 0 ? 'PASS (interval touches 0)' : 'MISS'}`,
  };
}
