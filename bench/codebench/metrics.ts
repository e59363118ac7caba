/**
 * Retrieval metrics over ranked hits, with bootstrap confidence intervals.
 * Each query has one relevant definition (every part of it counts, the
 * first one found sets the rank), so nDCG@10 is 1 / log2(rank + 1) and MRR@10
 * is 1 / rank, both 0 past rank 10.
 */

export interface PerQuery {
  /** 1-based rank of the first relevant hit, null when none in the list. */
  rank: number | null;
}

export interface MetricSet {
  n: number;
  mrr10: number;
  recall1: number;
  recall5: number;
  recall10: number;
  ndcg10: number;
}

export type MetricName = Exclude<keyof MetricSet, 'n'>;
export const metricNames: MetricName[] = ['mrr10', 'recall1', 'recall5', 'recall10', 'ndcg10'];

function perQuery(r: number | null): Record<MetricName, number> {
  const within = (k: number) => (r !== null && r <= k ? 1 : 0);
  return {
    mrr10: r !== null && r <= 10 ? 1 / r : 0,
    recall1: within(1),
    recall5: within(5),
    recall10: within(10),
    ndcg10: r !== null && r <= 10 ? 1 / Math.log2(r + 1) : 0,
  };
}

export function metrics(results: readonly PerQuery[]): MetricSet {
  const out: MetricSet = { n: results.length, mrr10: 0, recall1: 0, recall5: 0, recall10: 0, ndcg10: 0 };
  for (const r of results) {
    const m = perQuery(r.rank);
    for (const k of metricNames) out[k] += m[k];
  }
  for (const k of metricNames) out[k] = results.length ? out[k] / results.length : Number.NaN;
  return out;
}

/** Mulberry32: a small seeded PRNG, so a run's intervals can be reproduced from its printed seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Percentile bootstrap 95% interval of each metric's mean over queries (B resamples). */
export function bootstrap(results: readonly PerQuery[], seed: number, b = 2000): Record<MetricName, [number, number]> {
  const rnd = prng(seed);
  const per = results.map((r) => perQuery(r.rank));
  const samples: Record<MetricName, number[]> = { mrr10: [], recall1: [], recall5: [], recall10: [], ndcg10: [] };
  for (let i = 0; i < b; i++) {
    const sum: Record<MetricName, number> = { mrr10: 0, recall1: 0, recall5: 0, recall10: 0, ndcg10: 0 };
    for (let j = 0; j < per.length; j++) {
      const m = per[Math.floor(rnd() * per.length)]!;
      for (const k of metricNames) sum[k] += m[k];
    }
    for (const k of metricNames) samples[k].push(sum[k] / per.length);
  }
  const out = {} as Record<MetricName, [number, number]>;
  for (const k of metricNames) {
    const s = samples[k].sort((x, y) => x - y);
    out[k] = [s[Math.floor(0.025 * b)]!, s[Math.ceil(0.975 * b) - 1]!];
  }
  return out;
}

/** Bootstrap interval of the difference of MRR@10 between two systems on the same queries (paired). */
export function pairedDifference(a: readonly PerQuery[], b: readonly PerQuery[], seed: number, n = 2000): { mean: number; ci: [number, number] } {
  const rnd = prng(seed);
  const da = a.map((r) => perQuery(r.rank).mrr10);
  const db = b.map((r) => perQuery(r.rank).mrr10);
  const diffs: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < da.length; j++) {
      const k = Math.floor(rnd() * da.length);
      s += da[k]! - db[k]!;
    }
    diffs.push(s / da.length);
  }
  diffs.sort((x, y) => x - y);
  const mean = da.reduce((s, x, i) => s + x - db[i]!, 0) / da.length;
  return { mean, ci: [diffs[Math.floor(0.025 * n)]!, diffs[Math.ceil(0.975 * n) - 1]!] };
}

/** `v` plus Gaussian noise of `sigma` per dimension (Box-Muller from `rnd`), normalised to unit length: a neighbour, not a duplicate. */
export function perturb(v: Float32Array, rnd: () => number, sigma: number): Float32Array {
  const out = new Float32Array(v.length);
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    // Box-Muller.
    const g = Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
    out[i] = v[i]! + g * sigma;
    n += out[i]! * out[i]!;
  }
  n = Math.sqrt(n);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / n;
  return out;
}
