/**
 * Scale: what the index costs as it grows.
 *
 * - 50k rows: the quality corpus's real rows (real vectors, real code), as
 *   25 copies in 25 scopes, each copy's vectors perturbed (noise of norm
 *   about 0.5, so copies are neighbours, not duplicates). Built in its own
 *   store and catalog namespace, searched through the product's search
 *   function with a given query vector (the query embedding aside).
 * - The flat-scan crossover: tables of 5k, 10k, 20k and 50k of those rows,
 *   exact (flat) against the ANN index, latency and recall@10.
 * - The search path's overhead over LanceDB called directly with the same
 *   query vector, filter, columns and limit.
 * - A 10k-chunk repository (three real libraries, three copies each, as a
 *   path source): its seed build gets vectors from a deterministic stand-in
 *   for the model (chunks' text hashed to unit vectors), since 11k calls to
 *   the real model would take most of an hour here; then a one-file change
 *   is re-indexed by the real job with the real model, timed from submit to
 *   the recorded end.
 * - 1,000 incremental updates of one table, each an upsert that replaces a
 *   file's rows followed by the maintenance an index job ends with: table
 *   versions and disk against live data, right after the last update and
 *   after the scheduled maintenance.
 */
import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { codeCollection, codeTableSpec, createCodeSearch, createCodeStore } from '../../platform/code/index.ts';
import { Embedder, createIndexCatalog, openVectorStore, sqlString, type VectorRow, type VectorStore, type VectorTable } from '../../platform/vectors/index.ts';
import { createChunkPool } from '../../workers/chunking/pool.ts';
import { codeBatchHandler, codeIndexHandler, type CodeIndexDeps } from '../../workers/code/index-job.ts';
import type { ChildJobs, JobRow } from '../../platform/jobs/index.ts';
import type { CodeBatchInput } from '../../shared/index.ts';
import { median, percentile } from '../internal/stats.ts';
import { fetchLibrary, libraries } from './libraries.ts';
import { perturb, prng } from './metrics.ts';
import type { QualityOutcome } from './quality.ts';
import type { BenchStack } from './stack.ts';

const ms = (x: number) => `${x.toFixed(1)} ms`;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

export async function runScale(stack: BenchStack, quality: QualityOutcome, seed: number, log: (s: string) => void): Promise<string[]> {
  const verdicts: string[] = [];
  const rnd = prng(seed);
  const gen = await stack.api.code.catalog.serving(codeCollection);
  const base = await (
    await stack.api.vectors.table(codeTableSpec(gen!))
  ).rows(
    quality.indexed.map((i) => i.repo),
    undefined,
    { withVectors: true },
  );
  const queries = quality.queries.filter((q) => q.split === 'test').slice(0, 200);
  log(`scale: ${base.length} real rows to build from; ${queries.length} test queries`);

  // A store and catalog of their own, so the product's search function reads the 50k table.
  const scaleDir = join(stack.dirs.root, 'scale-lancedb');
  const store = await openVectorStore({ uri: scaleDir, maintenance: stack.workers.vectors.policy });
  const catalog = createIndexCatalog(stack.api.db, `${stack.prefix}:scale`);
  if (process.env.CODEBENCH_SCALE_STEPS === 'updates') {
    // Only the versions-and-disk step (it needs the quality phase's rows, nothing else).
    verdicts.push(...(await thousandUpdates(store, base, log)));
    store.close();
    return verdicts;
  }
  const embedder = new Embedder(stack.api.ollama);
  const search = createCodeSearch({ vectors: store, catalog, embedder }, { ...quality.fusion });

  const copies = Math.ceil(50_000 / base.length);
  const rowsFor = (copy: number): VectorRow[] =>
    base.map((r) => ({
      id: `${copy}:${r.id}`,
      scope: `copy-${copy}`,
      text: r.text,
      contentHash: r.contentHash,
      vector: copy === 0 ? r.vector! : perturb(r.vector!, rnd, 0.5 / Math.sqrt(r.vector!.length)),
      vectors: { name_vector: copy === 0 ? r.vectors!.name_vector! : perturb(r.vectors!.name_vector!, rnd, 0.5 / Math.sqrt(r.vector!.length)) },
      texts: { name_text: (r.fields.symbol as string | null) ?? '' },
      fields: { ...(r.fields as VectorRow['fields']), path: `copy${copy}/${r.fields.path as string}` },
    }));
  const allRows: VectorRow[] = [];
  for (let c = 0; c < copies; c++) allRows.push(...rowsFor(c));

  // Crossover: flat scan against the ANN index, by table size.
  log('scale: flat scan against the ANN index by table size …');
  const crossover: string[] = [];
  let table50k: VectorTable | undefined;
  let scopes50k: string[] = [];
  for (const size of [5_000, 10_000, 20_000, 50_000]) {
    const rows = allRows.slice(0, size);
    const scopes = [...new Set(rows.map((r) => r.scope))];
    const spec =
      size === 50_000
        ? codeTableSpec(await catalog.ensure(codeCollection, gen!.identity, 'code'))
        : codeTableSpec({ tableName: `cross_${size}_${randomUUID().slice(0, 8).replaceAll('-', '')}`, identity: gen!.identity });
    const t = await store.table(spec);
    for (let i = 0; i < rows.length; i += 5000) await t.upsert(rows.slice(i, i + 5000));
    const flat: number[] = [];
    const exactTop = new Map<string, string[]>();
    for (const q of queries.slice(0, 60)) {
      const v = quality.vectors.get(q.text)!;
      const [hits, d] = await timed(() => t.search({ scopes, mode: 'vector', vector: v, limit: 10, exact: true, fields: ['path'] }));
      flat.push(d);
      exactTop.set(
        q.id,
        hits.map((h) => h.id),
      );
    }
    const [, build] = await timed(() =>
      t.raw.createIndex('vector', {
        name: 'vector_idx',
        // As maintain() builds it (the product's graph settings), so the 50k table's recall below is the product's.
        config: lancedb.Index.hnswSq({
          distanceType: 'cosine',
          numPartitions: Math.max(1, Math.round(size / 100_000)),
          ...stack.workers.vectors.policy.hnswBuild,
        }),
        replace: true,
      }),
    );
    const ann: number[] = [];
    let overlap = 0;
    for (const q of queries.slice(0, 60)) {
      const v = quality.vectors.get(q.text)!;
      const [hits, d] = await timed(() => t.search({ scopes, mode: 'vector', vector: v, limit: 10, fields: ['path'] }));
      ann.push(d);
      const exact = exactTop.get(q.id)!;
      overlap += hits.filter((h) => exact.includes(h.id)).length / Math.max(1, exact.length);
    }
    crossover.push(
      `${size} rows: flat p50 ${ms(median(flat))}, ANN p50 ${ms(median(ann))} (index built in ${(build / 1000).toFixed(1)} s), ANN recall@10 ${(overlap / 60).toFixed(3)}`,
    );
    log(`  ${crossover.at(-1)}`);
    if (size === 50_000) {
      table50k = t;
      scopes50k = scopes;
    } else await store.dropTable(spec.name);
  }

  // The 50k table through the product's search (its index built as maintain() builds it).
  const t50 = table50k!;
  await t50.maintain();
  const stats50 = await t50.stats();
  log(`scale: 50k table: ${stats50.rows} rows, indexes ${stats50.indexes.map((i) => `${i.name} (${i.type}, ${i.unindexedRows} unindexed)`).join(', ')}`);
  const latency: Record<string, number[]> = { vector: [], text: [], hybrid: [] };
  for (let round = 0; round < 2; round++) {
    for (const q of queries) {
      for (const mode of ['hybrid', 'vector', 'text'] as const) {
        const [, d] = await timed(() => search({ q: q.text, mode, repositoryIds: scopes50k, limit: 10, vector: quality.vectors.get(q.text)! }));
        latency[mode]!.push(d);
      }
    }
  }
  for (const [mode, xs] of Object.entries(latency)) {
    const s = [...xs].sort((a, b) => a - b);
    log(`  ${mode} at 50k: p50 ${ms(percentile(s, 50))}, p95 ${ms(percentile(s, 95))}, p99 ${ms(percentile(s, 99))} (${s.length} searches)`);
  }
  const hp95 = percentile(
    [...latency.hybrid!].sort((a, b) => a - b),
    95,
  );
  verdicts.push(`hybrid search p95 at ${stats50.rows} rows ${ms(hp95)} (query embedding aside) ≤ 150 ms: ${hp95 <= 150 ? 'PASS' : 'MISS'}`);

  // ANN recall@10 against exact search, at 50k, for each vector column.
  const recalls: Record<string, number> = {};
  for (const column of ['vector', 'name_vector']) {
    let recall = 0;
    for (const q of queries) {
      const v = quality.vectors.get(q.text)!;
      const ann = await t50.search({ scopes: scopes50k, mode: 'vector', vector: v, limit: 10, fields: ['path'], vectorColumns: { [column]: 1 } });
      const exact = await t50.search({
        scopes: scopes50k,
        mode: 'vector',
        vector: v,
        limit: 10,
        exact: true,
        fields: ['path'],
        vectorColumns: { [column]: 1 },
      });
      recall += ann.filter((h) => exact.some((e) => e.id === h.id)).length / Math.max(1, exact.length);
    }
    recalls[column] = recall / queries.length;
  }
  const recall = Math.min(...Object.values(recalls));
  verdicts.push(
    `ANN recall@10 against exact search (bypassVectorIndex) at ${stats50.rows} rows: ${Object.entries(recalls)
      .map(([c, r]) => `${c} ${r.toFixed(3)}`)
      .join(', ')} ≥ 0.95: ${recall >= 0.95 ? 'PASS' : 'MISS'}`,
  );

  // Recall and latency against the HNSW query's candidate list (ef), to choose PARLEY_VECTOR_HNSW_EF:
  // the same table and index, opened with each ef.
  const exactTop = new Map<string, Set<string>>();
  for (const column of ['vector', 'name_vector'])
    for (const q of queries) {
      const exact = await t50.search({
        scopes: scopes50k,
        mode: 'vector',
        vector: quality.vectors.get(q.text)!,
        limit: 10,
        exact: true,
        fields: ['path'],
        vectorColumns: { [column]: 1 },
      });
      exactTop.set(`${column}:${q.id}`, new Set(exact.map((h) => h.id)));
    }
  for (const ef of [100, 200, 400, 800]) {
    const s = await openVectorStore({ uri: scaleDir, maintenance: { ...stack.workers.vectors.policy, hnswEf: ef } });
    const t = await s.table(t50.spec);
    const parts: string[] = [];
    for (const column of ['vector', 'name_vector']) {
      let found = 0;
      const took: number[] = [];
      for (const q of queries) {
        const [hits, d] = await timed(() =>
          t.search({ scopes: scopes50k, mode: 'vector', vector: quality.vectors.get(q.text)!, limit: 10, fields: ['path'], vectorColumns: { [column]: 1 } }),
        );
        took.push(d);
        const exact = exactTop.get(`${column}:${q.id}`)!;
        found += hits.filter((h) => exact.has(h.id)).length / Math.max(1, exact.size);
      }
      parts.push(`${column} recall@10 ${(found / queries.length).toFixed(3)}, p50 ${ms(median(took))}`);
    }
    log(`  HNSW ef ${ef}${ef === Math.max(stack.workers.vectors.policy.hnswEf, 100) ? ' (as configured, limit 10)' : ''}: ${parts.join('; ')}`);
    s.close();
  }

  // The graph's build settings (neighbours per node m, build candidate list efConstruction), to choose
  // PARLEY_VECTOR_HNSW_BUILD: the 'vector' column's index rebuilt with each, recall at the configured ef and at 400.
  for (const [m, efConstruction] of [
    [20, 300],
    [32, 300],
    [32, 600],
    [48, 600],
  ] as const) {
    const [, built] = await timed(() =>
      t50.raw.createIndex('vector', {
        name: 'vector_idx',
        config: lancedb.Index.hnswSq({ distanceType: 'cosine', numPartitions: 1, m, efConstruction }),
        replace: true,
      }),
    );
    const parts: string[] = [];
    for (const ef of [Math.max(stack.workers.vectors.policy.hnswEf, 100), 400]) {
      const s = await openVectorStore({ uri: scaleDir, maintenance: { ...stack.workers.vectors.policy, hnswEf: ef } });
      const t = await s.table(t50.spec);
      let found = 0;
      const took: number[] = [];
      for (const q of queries) {
        const [hits, d] = await timed(() =>
          t.search({ scopes: scopes50k, mode: 'vector', vector: quality.vectors.get(q.text)!, limit: 10, fields: ['path'], vectorColumns: { vector: 1 } }),
        );
        took.push(d);
        const exact = exactTop.get(`vector:${q.id}`)!;
        found += hits.filter((h) => exact.has(h.id)).length / Math.max(1, exact.size);
      }
      parts.push(`ef ${ef}: recall@10 ${(found / queries.length).toFixed(3)}, p50 ${ms(median(took))}`);
      s.close();
    }
    log(`  HNSW build m ${m}, efConstruction ${efConstruction} (built in ${(built / 1000).toFixed(1)} s): ${parts.join('; ')}`);
  }

  // Overhead of the search path over LanceDB called directly.
  const overhead = await measureOverhead(
    t50,
    scopes50k,
    search,
    queries.map((q) => ({ text: q.text, vector: quality.vectors.get(q.text)! })),
    stack.workers.vectors.policy,
  );
  log(
    `  search path at 50k, one vector column (name_vector): LanceDB directly p50 ${ms(overhead.direct)}, through the search function p50 ${ms(overhead.ours)}, paired median difference ${ms(overhead.diff)}`,
  );
  verdicts.push(
    `search path adds ${ms(overhead.diff)} p50 over LanceDB directly with the same query vector (50k rows, vector mode) ≤ 1 ms: ${overhead.diff <= 1 ? 'PASS' : 'MISS'}`,
  );

  // Versions and disk after 1,000 incremental updates.
  verdicts.push(...(await thousandUpdates(store, base, log)));
  store.close();

  // The 10k-chunk repository.
  verdicts.push(...(await tenThousand(stack, log)));
  return verdicts;
}

async function measureOverhead(
  t: VectorTable,
  scopes: string[],
  search: ReturnType<typeof createCodeSearch>,
  qs: { text: string; vector: Float32Array }[],
  policy: { hnswEf: number; refineFactor: number },
): Promise<{ direct: number; ours: number; diff: number }> {
  const pred = `scope IN (${scopes.map(sqlString).join(', ')})`;
  const cols = ['id', 'scope', 'text', 'content_hash', 'path', 'language', 'kind', 'symbol', 'start_line', 'end_line'];
  const direct: number[] = [];
  const ours: number[] = [];
  const diffs: number[] = [];
  // Warm both paths first.
  for (const q of qs.slice(0, 10)) {
    await t.raw.query().nearestTo(Array.from(q.vector)).column('name_vector').distanceType('cosine').where(pred).select(cols).limit(10).toArray();
    await search({ q: q.text, mode: 'vector', repositoryIds: scopes, limit: 10, vector: q.vector, fusion: { vectors: { name: 1, chunk: 0 } } });
  }
  for (let round = 0; round < 2; round++) {
    for (const q of qs) {
      const [, a] = await timed(() =>
        t.raw
          .query()
          .nearestTo(Array.from(q.vector))
          .column('name_vector')
          .distanceType('cosine')
          .where(pred)
          .select(cols)
          .limit(10)
          .ef(Math.max(policy.hnswEf, 10 * policy.refineFactor))
          .refineFactor(policy.refineFactor)
          .toArray(),
      );
      const [, b] = await timed(() =>
        search({ q: q.text, mode: 'vector', repositoryIds: scopes, limit: 10, vector: q.vector, fusion: { vectors: { name: 1, chunk: 0 } } }),
      );
      direct.push(a);
      ours.push(b);
      diffs.push(b - a);
    }
  }
  return { direct: median(direct), ours: median(ours), diff: median(diffs) };
}

async function thousandUpdates(store: VectorStore, base: Awaited<ReturnType<VectorTable['rows']>>, log: (s: string) => void): Promise<string[]> {
  const t = await store.table(
    codeTableSpec({
      tableName: `updates_${randomUUID().slice(0, 8).replaceAll('-', '')}`,
      identity: { model: 'm', digest: 'd', dimensions: base[0]!.vector!.length, chunker: 'c' },
    }),
  );
  const rows: VectorRow[] = base.map((r) => ({
    id: r.id,
    scope: 'repo',
    text: r.text,
    contentHash: r.contentHash,
    vector: r.vector!,
    vectors: r.vectors,
    texts: { name_text: (r.fields.symbol as string | null) ?? '' },
    fields: r.fields as VectorRow['fields'],
  }));
  await t.upsert(rows);
  await t.maintain();
  const paths = [...new Set(rows.map((r) => r.fields!.path as string))];
  log(`scale: 1,000 incremental updates of a ${rows.length}-row table (${paths.length} files), each followed by the job's maintenance …`);
  const t0 = performance.now();
  const peak = { versions: 0 };
  for (let i = 1; i <= 1000; i++) {
    const path = paths[i % paths.length]!;
    const fileRows = rows
      .filter((r) => r.fields!.path === path)
      .map((r) => {
        const text = `${r.text}\n// revision ${i}`;
        return { ...r, text, contentHash: createHash('sha256').update(text).digest('hex') };
      });
    await t.upsert(fileRows, { replace: { scope: 'repo', field: 'path', values: [path] } });
    await t.maintain();
    if (i % 100 === 0) {
      const s = await t.stats();
      peak.versions = Math.max(peak.versions, s.versions);
      log(
        `  after ${i}: ${s.versions} versions, disk ${(s.diskBytes! / 1e6).toFixed(1)} MB, live ${((s.liveBytes + s.indexBytes) / 1e6).toFixed(1)} MB (${((performance.now() - t0) / i).toFixed(0)} ms per update)`,
      );
    }
  }
  const after = await t.stats();
  const live = after.liveBytes + after.indexBytes;
  // No more calls: the table's own follow-up prunes (store.ts) remove what the burst left once it passes the
  // retention. Measured when the table is down to one version, or when they would all have run.
  const quietFrom = performance.now();
  const settleBy = quietFrom + (store.policy.versionRetentionMs + 1000) * (store.policy.followUpPrunes + 1);
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    if ((await t.raw.listVersions()).length <= 1 || performance.now() > settleBy) break;
  }
  const settledAfterS = (performance.now() - quietFrom) / 1000;
  const settled = await t.stats();
  const liveSettled = settled.liveBytes + settled.indexBytes;
  log(
    `  right after the last update: ${after.versions} versions, disk ${(after.diskBytes! / 1e6).toFixed(1)} MB = ${(after.diskBytes! / live).toFixed(2)}× live; ${settledAfterS.toFixed(0)} s later, with no call (the follow-up prunes): ${settled.versions} versions, ${(settled.diskBytes! / liveSettled).toFixed(2)}× live`,
  );
  const ratio = settled.diskBytes! / liveSettled;
  return [
    `after 1,000 incremental updates: ${after.versions} table versions (peak seen ${peak.versions}) ≤ 50: ${after.versions <= 50 && peak.versions <= 50 ? 'PASS' : 'MISS'}`,
    `after 1,000 incremental updates: disk ${ratio.toFixed(2)}× the live data ${settledAfterS.toFixed(0)} s after the last one, with no call (right after it ${(after.diskBytes! / live).toFixed(2)}×: versions younger than the ${store.policy.versionRetentionMs / 1000} s retention, kept for reads in flight) ≤ 1.5: ${ratio <= 1.5 ? 'PASS' : 'MISS'}`,
  ];
}

/** A unit vector from a text's hash: the seed build's stand-in for the model (see the file comment). */
function hashVector(text: string, dims: number): Float32Array {
  const out = new Float32Array(dims);
  let h = createHash('sha256').update(text).digest();
  for (let i = 0; i < dims; i++) {
    if (i % 32 === 0 && i) h = createHash('sha256').update(h).digest();
    out[i] = h[i % 32]! / 255 - 0.5;
  }
  const n = Math.hypot(...out);
  return out.map((x) => x / n);
}

async function tenThousand(stack: BenchStack, log: (s: string) => void): Promise<string[]> {
  const root = join(stack.dirs.roots, 'ten-thousand');
  mkdirSync(root, { recursive: true });
  for (let copy = 0; copy < 3; copy++) {
    for (const lib of [libraries.lodash, libraries.moreItertools, libraries.rxjs])
      cpSync(fetchLibrary(lib), join(root, `copy${copy}`, `${lib.name}-${lib.version}`), { recursive: true });
  }
  writeFileSync(join(root, '.gitignore'), '.complete\n');
  const created = await stack.request('POST', '/v1/code/repositories', {
    as: stack.operator,
    body: { name: 'ten-thousand', source: { type: 'path', path: root } },
  });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${created.text}`);
  const repo = created.json.id as string;

  log('scale: seeding the 10k-chunk repository (model stand-in for the seed only) …');
  const real = new Embedder(stack.api.ollama);
  const seedEmbedder = Object.create(real) as Embedder;
  seedEmbedder.embed = async (_model, texts) => ({ vectors: texts.map((t) => hashVector(t, 384)), promptTokens: 0 });
  const pool = createChunkPool({ threads: 2 });
  // The seed runs its batches inline, in this process (no queue): the stand-in embedder lives here.
  const ctx = {
    jobId: randomUUID(),
    ownerId: stack.operator.id,
    attempt: 1,
    signal: new AbortController().signal,
    abortReason: undefined,
    willRetry: () => false,
    addUsage: async () => true,
    progress: () => {},
    emitTokens: () => {},
    meter: () => {},
    log: {
      info() {},
      warn() {},
      error() {},
      debug() {},
      child() {
        return this;
      },
    } as never,
  };
  const rows = new Map<string, JobRow>();
  const inline: ChildJobs = {
    parent: async (id) => ({ id, queue: 'code', ownerId: stack.operator.id, priority: 'batch' }),
    earlier: async () => [],
    submit: async (parent, _def, input) => {
      const id = `${parent.id}:${(input as CodeBatchInput).n}`;
      const result = await codeBatchHandler(deps)(input as CodeBatchInput, ctx);
      rows.set(id, { id, state: 'completed', result } as JobRow);
      return id;
    },
    states: async (ids) => ids.map((id) => rows.get(id)!),
    cancel: async () => {},
  };
  const deps: CodeIndexDeps = {
    store: createCodeStore(stack.api.db),
    vectors: stack.workers.vectors,
    catalog: stack.workers.catalog,
    embedder: seedEmbedder,
    pool,
    children: inline,
    config: stack.workers.config.code,
  };
  const seeded = await codeIndexHandler(deps)({ repositoryId: repo }, ctx);
  await pool.close();
  log(`  seeded: ${seeded.files} files, ${seeded.chunks} chunks in ${(seeded.durationMs / 1000).toFixed(1)} s`);

  const times: number[] = [];
  const jobTimes: number[] = [];
  const target = join(root, 'copy1', `${libraries.moreItertools.name}-${libraries.moreItertools.version}`, 'more_itertools', 'recipes.py');
  for (let i = 1; i <= 3; i++) {
    appendFileSync(target, `\n\ndef bench_edit_${i}(iterable):\n    """Return the sum of the items, edit number ${i}."""\n    return sum(iterable) + ${i}\n`);
    const t0 = performance.now();
    const r = await stack.request('POST', `/v1/code/repositories/${repo}/index`, { as: stack.operator });
    const job = await stack.waitJob(r.json.id, 120_000);
    const wall = performance.now() - t0;
    if (job.state !== 'completed') throw new Error(`re-index ${job.state}: ${job.error_message}`);
    times.push(wall);
    jobTimes.push(job.finished_at.getTime() - job.started_at.getTime());
    const res = job.result as { filesChanged: number; chunksEmbedded: number; chunks: number };
    log(
      `  edit ${i}: ${res.filesChanged} file changed, ${res.chunksEmbedded} chunks embedded, ${res.chunks} chunks in the index; submit to recorded end ${ms(wall)} (job ${ms(jobTimes.at(-1)!)})`,
    );
  }
  return [
    `re-index after a one-file change in a ${seeded.chunks}-chunk repository: median ${(median(times) / 1000).toFixed(2)} s, worst ${(Math.max(...times) / 1000).toFixed(2)} s, submit to recorded end ≤ 5 s: ${Math.max(...times) <= 5000 ? 'PASS' : median(times) <= 5000 ? 'PASS (median; worst MISS)' : 'MISS'}`,
  ];
}
