/**
 * How hybrid search fuses its lists, compared offline (`CODEBENCH_ONLY=fusion`).
 *
 * Each query's three candidate lists are fetched once through the product's
 * search (name vectors, chunk vectors, full text; 50 deep, as hybrid takes
 * them), then fused here two ways, both the product's (platform/vectors/rrf.ts):
 * reciprocal rank fusion and a convex combination of min-max normalised
 * scores. Each family's weights are chosen on
 * the dev split; the test split reports the choice, against the best single
 * mode as shipped. The product keeps a chunk-vector weight of at least 0.25
 * (platform/code/search.ts says why); the same grids without that rule are
 * printed apart, for what the rule costs on docstring queries.
 */
import { minMaxFusion, reciprocalRankFusion } from '../../platform/vectors/rrf.ts';
import { relevant, type Query } from './corpus.ts';
import { metrics, pairedDifference, type PerQuery } from './metrics.ts';
import type { QualityOutcome } from './quality.ts';
import type { BenchStack } from './stack.ts';

interface Candidate {
  key: string;
  score: number;
  relevant: boolean;
}

interface Lists {
  q: Query;
  name: Candidate[];
  chunk: Candidate[];
  text: Candidate[];
}

type Weights = { chunk: number; text: number };
type Fuse = (l: Lists, w: Weights) => Candidate[];

const depth = 50;
const f3 = (x: number) => x.toFixed(3);

/** The three lists of a query, each with its weight (the name vectors weigh 1), leaving out those weighted 0. */
const weighted = (l: Lists, w: Weights) =>
  [
    { items: l.name, weight: 1 },
    { items: l.chunk, weight: w.chunk },
    { items: l.text, weight: w.text },
  ].filter((x) => x.weight > 0);

const rrf =
  (k: number): Fuse =>
  (l, w) =>
    reciprocalRankFusion(weighted(l, w), (c) => c.key, k).map((f) => f.item);

const convex: Fuse = (l, w) =>
  minMaxFusion(
    weighted(l, w),
    (c) => c.key,
    (c) => c.score,
  ).map((f) => f.item);

const rankIn = (ranked: readonly Candidate[]): PerQuery => {
  const i = ranked.slice(0, 10).findIndex((c) => c.relevant);
  return { rank: i < 0 ? null : i + 1 };
};

async function fetchLists(stack: BenchStack, outcome: QualityOutcome, q: Query, fusionOf: QualityOutcome['fusion']): Promise<Lists> {
  const repo = outcome.indexed.find((i) => i.corpus.library.name === q.library)!.repo;
  const vector = outcome.vectors.get(q.text)!;
  const get = async (mode: 'vector' | 'text', fusion: Partial<QualityOutcome['fusion']>) => {
    const res = await stack.api.code.search({ q: q.text, mode, repositoryIds: [repo], limit: depth, vector, fusion });
    return res.items.map((h) => ({ key: `${h.path}:${h.startLine}:${h.endLine}:${h.kind}`, score: h.score, relevant: relevant(q, h) }));
  };
  return {
    q,
    // One vector column alone ranks by its cosine similarity (its score), which the convex fusion needs.
    name: await get('vector', { vectors: { name: 1, chunk: 0 } }),
    chunk: await get('vector', { vectors: { name: 0, chunk: 1 } }),
    text: await get('text', { nameBoost: fusionOf.nameBoost }),
  };
}

export async function runFusion(stack: BenchStack, outcome: QualityOutcome, seed: number, log: (s: string) => void): Promise<string[]> {
  const shipped = (await import('../../platform/code/index.ts')).defaultFusion;
  log('fusion: fetching each query’s candidate lists …');
  const lists: Lists[] = [];
  for (const q of outcome.queries) lists.push(await fetchLists(stack, outcome, q, shipped));
  const dev = lists.filter((l) => l.q.split === 'dev');
  const test = lists.filter((l) => l.q.split === 'test');
  const score = (set: Lists[], f: (l: Lists) => Candidate[]) => set.map((l) => rankIn(f(l)));
  const mrr = (r: PerQuery[]) => metrics(r).mrr10;

  // The single modes as shipped: text alone; vector = RRF of the two vector lists.
  const vectorShipped = (l: Lists) =>
    reciprocalRankFusion(
      [
        { items: l.name, weight: shipped.vectors.name },
        { items: l.chunk, weight: shipped.vectors.chunk },
      ],
      (c) => c.key,
      shipped.k,
    ).map((f) => f.item);
  const singles = { text: score(test, (l) => l.text), vector: score(test, vectorShipped) };
  const best = mrr(singles.text) >= mrr(singles.vector) ? singles.text : singles.vector;
  const lines = [
    `fusion (offline, ${depth} candidates per list): test ${test.length} queries; single modes as shipped: text ${f3(mrr(singles.text))}, vector ${f3(mrr(singles.vector))}`,
    `  shipped hybrid re-fused here: test ${f3(mrr(score(test, (l) => (shipped.hybrid.method === 'minmax' ? convex : rrf(shipped.hybrid.k))(l, { chunk: shipped.hybrid.vectors.chunk, text: shipped.hybrid.text }))))} (the product's own answer is the quality phase's "hybrid (shipped)")`,
  ];
  const families: [string, (w: Weights) => (l: Lists) => Candidate[]][] = [
    ...[5, 10, 60].map((k) => [`RRF k=${k}`, (w: Weights) => (l: Lists) => rrf(k)(l, w)] as [string, (w: Weights) => (l: Lists) => Candidate[]]),
    ['convex min-max', (w: Weights) => (l: Lists) => convex(l, w)],
  ];
  for (const [rule, chunks] of [
    ['chunk weight ≥ 0.25 (the product’s rule)', [0.25, 0.5, 0.75, 1]],
    ['chunk vectors left out', [0]],
  ] as const) {
    lines.push(`  ${rule}:`);
    for (const [name, make] of families) {
      let chosen: { w: Weights; dev: number } | undefined;
      for (const chunk of chunks)
        for (const text of [0.5, 0.75, 1, 1.5]) {
          const d = mrr(score(dev, make({ chunk, text })));
          if (!chosen || d > chosen.dev + 1e-9) chosen = { w: { chunk, text }, dev: d };
        }
      const t = score(test, make(chosen!.w));
      const diff = pairedDifference(t, best, seed);
      lines.push(
        `    ${name.padEnd(15)} chosen on dev: chunk ${chosen!.w.chunk}, text ${chosen!.w.text} (dev ${f3(chosen!.dev)}); test ${f3(mrr(t))}, − best single ${f3(diff.mean)} [${f3(diff.ci[0])}, ${f3(diff.ci[1])}]`,
      );
    }
  }
  for (const l of lines) log(l);
  return lines;
}
