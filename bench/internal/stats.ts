/**
 * Numbers for the benchmarks: medians, percentiles and the A/B verdict every
 * script prints last.
 */

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const s = Float64Array.from(samples).sort();
  const arr = Array.from(s);
  return { n: arr.length, p50: percentile(arr, 50), p90: percentile(arr, 90), p99: percentile(arr, 99), max: arr.at(-1) ?? Number.NaN };
}

export const fmt = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/**
 * One figure measured on both sides, pair by pair. `better` says which way
 * is good; the ratio is always Parley / baseline, and the target is a
 * predicate over the medians and the median of per-pair ratios.
 */
export interface Figure {
  name: string;
  unit: string;
  better: 'higher' | 'lower';
  baseline: number[];
  parley: number[];
  /** Human-readable target, e.g. "Parley >= 0.7 x baseline". */
  target: string;
  /** Decides PASS/MISS from the medians, the median per-pair ratio and, for "in every run" targets, Parley's runs. */
  met: (m: { baseline: number; parley: number; ratio: number; parleyRuns: readonly number[] }) => boolean;
  digits?: number;
  /** Figures that are reported but are not the target. */
  informational?: boolean;
}

/** A figure printed beside the targets but not judged: its verdict is always `info`. */
export function reported(name: string, unit: string, baseline: number[], parley: number[], better: Figure['better'] = 'lower'): Figure {
  return { name, unit, better, baseline, parley, target: '(reported)', met: () => true, informational: true };
}

export interface Verdict {
  name: string;
  unit: string;
  baseline: number;
  parley: number;
  ratio: number;
  target: string;
  pass: boolean | undefined;
}

export function verdict(f: Figure): Verdict {
  // A 0/0 pair (e.g. no tokens lost on either side) is a ratio of 1.
  const ratios = f.parley.map((p, i) => (p === 0 && f.baseline[i] === 0 ? 1 : p / f.baseline[i]!));
  const m = { baseline: median(f.baseline), parley: median(f.parley), ratio: median(ratios) };
  return { name: f.name, unit: f.unit, ...m, target: f.target, pass: f.informational ? undefined : f.met({ ...m, parleyRuns: f.parley }) };
}

/** Prints the medians, the median of per-pair ratios and PASS/MISS for each figure. */
export function printVerdicts(title: string, figures: Figure[]): Verdict[] {
  console.log(`\n== ${title}: medians over ${figures[0]?.baseline.length ?? 0} pairs ==`);
  const out: Verdict[] = [];
  for (const f of figures) {
    const v = verdict(f);
    out.push(v);
    const d = f.digits ?? 2;
    const tag = v.pass === undefined ? 'info' : v.pass ? 'PASS' : 'MISS';
    console.log(
      `${f.name.padEnd(34)} baseline ${fmt(v.baseline, d).padStart(9)} ${f.unit.padEnd(6)} Parley ${fmt(v.parley, d).padStart(9)} ${f.unit.padEnd(6)} ratio(P/B, median of pairs) ${fmt(v.ratio, 3).padStart(6)}   target: ${f.target}   ${tag}`,
    );
  }
  return out;
}
