/**
 * bench/memory/storage.ts: issue 11's figures that need the store, on the
 * real API, workers, Ollama, LanceDB and Postgres.
 *
 *   npx tsx bench/memory/storage.ts                 # test split
 *   BENCH_SPLIT=dev npx tsx bench/memory/storage.ts # the split for tuning
 *
 * 1. Ingest: the seeded debates (generate.ts; about 1,000 turns) go in as
 *    conversation sources through `POST /v1/knowledge/sources`, so every
 *    turn passes through the `knowledge.extract` job; counted: turns without
 *    a recorded outcome (lost), failed outcomes.
 * 2. Retrieval, per question with gold evidence turns: Recall@5 of those
 *    turns among the top 5 hits' provenance and that of the values each hit
 *    replaced (its `history`, as the search API answers; the hits alone are
 *    printed beside), for the fused search and for
 *    each of its signals alone (vector, text, entity, recency: the same
 *    search with the other weights at 0); and for knowledge-update
 *    questions, whether the top hit is the newest value's turn.
 * 3. Search latency at MEMORY_BENCH_ITEMS (100,000) items: the stored items'
 *    real vectors copied with noise into one scope of another tenant, the
 *    fused search over all of them, the query embedding aside (computed
 *    before, passed in).
 * 4. Table versions after the `vectors.maintain` job.
 *
 * Env: BENCH_SPLIT (test), BENCH_SEED (1), MEMORY_BENCH_SET (standard; `hard`: five sessions per
 * debate, distractor turns that share a fact's words, paraphrased questions), MEMORY_BENCH_DEBATES (42),
 * MEMORY_BENCH_ITEMS (100000), PARLEY_BENCH_CACHE (where state goes).
 */
import { submitJob } from '../../platform/code/index.ts';
import { scopeKey, supersededChains, type FusionWeights } from '../../platform/knowledge/index.ts';
import { Embedder } from '../../platform/vectors/index.ts';
import { vectorsMaintain, type KnowledgeItem } from '../../shared/index.ts';
import { perturb, prng } from '../codebench/metrics.ts';
import { startBenchStack } from '../codebench/stack.ts';
import { describeMachine } from '../internal/cost.ts';
import { teardownOnExit } from '../internal/parley.ts';
import { median, percentile } from '../internal/stats.ts';
import { debates, type Question, type Split } from './generate.ts';

const split = (process.env.BENCH_SPLIT ?? 'test') as Split;
const seed = Number(process.env.BENCH_SEED ?? 1);
const debateCount = Number(process.env.MEMORY_BENCH_DEBATES ?? 42);
const scaleItems = Number(process.env.MEMORY_BENCH_ITEMS ?? 100_000);
// `hard`: five sessions per debate, distractor turns, paraphrased questions (generate.ts DebateOptions).
const set = process.env.MEMORY_BENCH_SET === 'hard' ? 'hard' : 'standard';
const verdicts: string[] = [];
const f3 = (x: number) => x.toFixed(3);
const ms = (x: number) => `${x.toFixed(1)} ms`;

console.log(`bench/memory storage: split=${split} seed=${seed} set=${set} debates=${debateCount} items at scale=${scaleItems}`);
console.log(await describeMachine());
const stack = await startBenchStack('memory');
const teardown = teardownOnExit(() => stack.stop());
try {
  // ── 1. Ingest through the job ──
  const ds = debates(split, debateCount, seed, set === 'hard' ? { sessions: 5, distractors: true, paraphrase: true } : {});
  const turns = ds.reduce((n, d) => n + d.turns.length, 0);
  const t0 = performance.now();
  const submitted: { debate: string; source: string; job: string; messages: number }[] = [];
  for (const d of ds) {
    const r = await stack.request('POST', '/v1/knowledge/sources', {
      body: {
        source: { kind: 'conversation', title: d.id, messages: d.turns.map((t) => ({ id: t.id, speaker: t.speaker, text: t.text, at: t.at })) },
        scope: { scope: 'room', room: d.id },
      },
    });
    if (r.status !== 202) throw new Error(`source for ${d.id}: ${r.status} ${r.text}`);
    submitted.push({ debate: d.id, source: r.json.source.id, job: r.json.job.id, messages: d.turns.length });
  }
  const states = new Map<string, number>();
  for (const s of submitted) {
    const row = await stack.waitJob(s.job);
    states.set(row.state, (states.get(row.state) ?? 0) + 1);
  }
  const ingestS = (performance.now() - t0) / 1000;
  let outcomes = 0;
  let failed = 0;
  let items = 0;
  for (const s of submitted) {
    const v = (await stack.request('GET', `/v1/knowledge/sources/${s.source}`)).json;
    const recorded = new Set((v.outcomes as { messageId: string | null; outcome: string }[]).map((o) => o.messageId));
    outcomes += recorded.size;
    failed += (v.outcomes as { outcome: string }[]).filter((o) => o.outcome === 'failed').length;
    items += v.items as number;
  }
  const lost = turns - outcomes;
  console.log(
    `ingest: ${turns} turns in ${ds.length} sources through knowledge.extract in ${ingestS.toFixed(1)} s (${(turns / ingestS).toFixed(1)} turns/s); jobs ${[...states].map(([k, n]) => `${k} ${n}`).join(', ')}; ${items} items stored; outcomes recorded ${outcomes}, failed ${failed}, lost ${lost}`,
  );
  verdicts.push(`turns ingested without a recorded outcome: ${lost} of ${turns} (target 0): ${lost === 0 ? 'PASS' : 'MISS'}`);

  // ── 2. Retrieval ──
  const knowledge = stack.api.knowledge.knowledge;
  const repo = knowledge.forTenant(stack.user.id);
  const { model } = (await knowledge.open()).serving;
  const embedder = new Embedder(stack.api.ollama);
  const signals: Record<string, Partial<FusionWeights>> = {
    fused: {},
    vector: { vector: 1, text: 0, entity: 0, recency: 0 },
    text: { vector: 0, text: 1, entity: 0, recency: 0 },
    entity: { vector: 0, text: 0, entity: 1, recency: 0 },
    recency: { vector: 0, text: 0, entity: 0, recency: 1 },
  };
  const recall: Record<string, number[]> = Object.fromEntries(Object.keys(signals).map((k) => [k, []]));
  // The same, counting the hits' own provenance only (not the values each hit says it replaced).
  const hitsOnly: Record<string, number[]> = Object.fromEntries(Object.keys(signals).map((k) => [k, []]));
  const records = stack.api.knowledge.records;
  const byKind = new Map<Question['kind'], number[]>();
  let updates = 0;
  let newestFirst = 0;
  const queryVectors = new Map<string, Float32Array>();
  for (const d of ds) {
    const scopes = [scopeKey({ scope: 'room', owner: stack.user.id, room: d.id })];
    for (const q of d.questions) {
      if (!q.evidence.length) continue;
      const vector = queryVectors.get(q.question) ?? (await embedder.embedQuery(model, q.question));
      queryVectors.set(q.question, vector);
      for (const [name, weights] of Object.entries(signals)) {
        const hits = await repo.search({ scopes, text: q.question, limit: 5, weights, vector });
        // As GET /v1/knowledge/search answers: each hit with the values it replaced (supersededChains).
        const history = await supersededChains(
          { records, repo },
          stack.user.id,
          scopes,
          hits.map((h) => h.item.id),
        );
        const own = new Set(hits.flatMap((h) => h.item.provenance.messageIds));
        const seen = new Set([...own, ...hits.flatMap((h) => (history.get(h.item.id) ?? []).flatMap((i) => i.provenance.messageIds))]);
        const r = q.evidence.filter((e) => seen.has(e)).length / q.evidence.length;
        recall[name]!.push(r);
        hitsOnly[name]!.push(q.evidence.filter((e) => own.has(e)).length / q.evidence.length);
        if (name === 'fused') {
          byKind.set(q.kind, [...(byKind.get(q.kind) ?? []), r]);
          if (q.kind === 'knowledge-update') {
            updates++;
            if (hits[0]?.item.provenance.messageIds.includes(q.evidence[0]!)) newestFirst++;
            else if (process.env.BENCH_VERBOSE === '1')
              console.log(
                `  not first: ${q.question} (newest ${q.evidence[0]} ${JSON.stringify(d.turns.find((t) => t.id === q.evidence[0])?.text)}); got ${hits
                  .slice(0, 3)
                  .map((h) => `${h.item.provenance.messageIds.join('+')} ${JSON.stringify(h.item.text)}${h.item.supersededAt ? ' (superseded)' : ''}`)
                  .join(' | ')}`,
              );
          }
        }
      }
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const n = recall.fused!.length;
  console.log(
    `retrieval: ${n} questions with gold evidence, Recall@5 of the evidence turns (in the top 5 hits and the values they replaced; the hits alone after /):`,
  );
  for (const [name, xs] of Object.entries(recall)) console.log(`  ${name.padEnd(8)} ${f3(mean(xs))} / ${f3(mean(hitsOnly[name]!))}`);
  console.log(`  fused by kind: ${[...byKind].map(([k, xs]) => `${k} ${f3(mean(xs))} (${xs.length})`).join(', ')}`);
  const fused = mean(recall.fused!);
  const best = Object.entries(recall)
    .filter(([k]) => k !== 'fused')
    .map(([k, xs]) => [k, mean(xs)] as const)
    .sort((a, b) => b[1] - a[1])[0]!;
  // A paired bootstrap of the gain over the best single signal, over questions.
  const rnd = prng(seed);
  const gains: number[] = [];
  const fx = recall.fused!;
  const bx = recall[best[0]]!;
  for (let b = 0; b < 2000; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rnd() * n);
      s += fx[j]! - bx[j]!;
    }
    gains.push(s / n);
  }
  gains.sort((a, b) => a - b);
  verdicts.push(`Recall@5 of gold evidence (fused) ${f3(fused)} ≥ 0.85: ${fused >= 0.85 ? 'PASS' : 'MISS'}`);
  verdicts.push(
    `fused beats its best single signal (${best[0]} ${f3(best[1])}) by ${f3(fused - best[1])} (95% [${f3(percentile(gains, 2.5))}, ${f3(percentile(gains, 97.5))}]) ≥ 0.05: ${fused - best[1] >= 0.05 ? 'PASS' : 'MISS'}`,
  );
  const cv = newestFirst / Math.max(1, updates);
  verdicts.push(`current-value questions with the newest value's item first: ${newestFirst}/${updates} = ${f3(cv)} ≥ 0.90: ${cv >= 0.9 ? 'PASS' : 'MISS'}`);

  // ── 3. Search latency at scale ──
  const roomScopes = ds.map((d) => scopeKey({ scope: 'room', owner: stack.user.id, room: d.id }));
  const stored: KnowledgeItem[] = await repo.all(roomScopes);
  if (!stored.length) throw new Error('no items were stored: the scale phase has nothing to copy');
  const baseVectors = await repo.embed(stored.map((i) => i.text)); // stored already: read back by hash, not embedded again
  const tenant = stack.operator.id;
  const big = knowledge.forTenant(tenant);
  const noise = prng(seed + 1);
  const t1 = performance.now();
  for (let start = 0; start < scaleItems; start += 5000) {
    const batch: KnowledgeItem[] = [];
    const vectors = new Map<string, Float32Array>();
    for (let k = start; k < Math.min(scaleItems, start + 5000); k++) {
      const src = stored[k % stored.length]!;
      const copy = Math.floor(k / stored.length);
      const text = copy === 0 ? src.text : `${src.text} (${copy})`;
      batch.push({ ...src, id: `scale:${k}`, text, scope: 'shared', owner: tenant, room: null, supersededAt: null });
      const v = baseVectors[k % stored.length]!;
      vectors.set(text, copy === 0 ? v : perturb(v, noise, 0.5 / Math.sqrt(v.length)));
    }
    await big.upsert(batch, { vectors, maintain: false });
  }
  const { table } = (await knowledge.open()).serving;
  await table.maintain();
  const loadS = (performance.now() - t1) / 1000;
  const scaleCount = await big.count(['shared']);
  console.log(`scale: ${scaleCount} items written for one tenant in ${loadS.toFixed(1)} s (maintained: ANN and full-text indexes current)`);
  const questions = [...queryVectors.entries()];
  const took: number[] = [];
  for (let round = 0; round < 2; round++)
    for (const [text, vector] of questions) {
      const t = performance.now();
      await big.search({ scopes: ['shared'], text, limit: 10, vector });
      took.push(performance.now() - t);
    }
  took.sort((a, b) => a - b);
  const p95 = percentile(took, 95);
  console.log(`  fused search over ${scaleCount} items: p50 ${ms(median(took))}, p95 ${ms(p95)}, p99 ${ms(percentile(took, 99))} (${took.length} searches)`);
  verdicts.push(`search p95 at ${scaleCount} items ${ms(p95)} (query embedding aside) ≤ 100 ms: ${p95 <= 100 ? 'PASS' : 'MISS'}`);

  // ── 4. Versions after maintenance ──
  const before = await table.stats();
  const job = await submitJob({ jobs: stack.api.jobs }, vectorsMaintain, {}, { ownerId: stack.operator.id });
  const done = await stack.waitJob(job.id);
  const after = await table.stats();
  console.log(
    `maintenance (vectors.maintain, ${done.state}): knowledge table ${before.versions} versions → ${after.versions}, ${before.fragments} fragments → ${after.fragments}, purged ${JSON.stringify(done.result?.knowledge ?? null)}`,
  );
  verdicts.push(`knowledge table versions after maintenance ${after.versions} ≤ 50: ${after.versions <= 50 ? 'PASS' : 'MISS'}`);
} finally {
  console.log('\n== bench/memory storage verdicts ==');
  for (const v of verdicts) console.log(v);
  await teardown();
}
