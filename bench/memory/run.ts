/**
 * bench/memory: the deterministic half of issue 11's figures, on the TEST
 * split (BENCH_SPLIT=dev for tuning). Prints dedup precision and recall,
 * classification macro-F1, extraction p95 per turn, and what the debates
 * show without storage (outcomes per turn, supersedes found for updates).
 *
 *   npx tsx bench/memory/run.ts
 *   BENCH_SPLIT=dev BENCH_SEED=2 npx tsx bench/memory/run.ts
 */
import { SourceExtractor, classify, compareStatements, extractEntities } from '../../platform/knowledge/index.ts';
import { debates, pairs, utterances, type Cls, type Split } from './generate.ts';

const split = (process.env.BENCH_SPLIT ?? 'test') as Split;
const seed = Number(process.env.BENCH_SEED ?? 1);
const verbose = process.env.BENCH_VERBOSE === '1';
console.log(`bench/memory: split=${split} seed=${seed}`);
process.stdout.on('error', () => process.exit(0));

// ── Dedup ──
const ps = pairs(split, 600, seed);
let tp = 0;
let fp = 0;
let fn = 0;
const byKind = new Map<string, { n: number; right: number }>();
let valueChanges = 0;
let flaggedUpdates = 0;
for (const p of ps) {
  const v = compareStatements(p.a, p.b);
  const said = v.verdict === 'duplicate';
  if (said && p.duplicate) tp++;
  else if (said && !p.duplicate) fp++;
  else if (!said && p.duplicate) fn++;
  const k = byKind.get(p.kind) ?? { n: 0, right: 0 };
  k.n++;
  if (said === p.duplicate) k.right++;
  else if (verbose) console.log(`  dedup miss [${p.kind}] ${JSON.stringify(p.a)} | ${JSON.stringify(p.b)} → ${JSON.stringify(v)}`);
  byKind.set(p.kind, k);
  if (p.kind === 'value-change') {
    valueChanges++;
    if (v.verdict === 'update') flaggedUpdates++;
  }
}
const precision = tp / Math.max(1, tp + fp);
const recall = tp / Math.max(1, tp + fn);
console.log(
  `dedup: ${ps.length} pairs (${ps.filter((p) => p.duplicate).length} duplicates); precision ${precision.toFixed(3)} (target ≥ 0.98), recall ${recall.toFixed(3)} (target ≥ 0.90)`,
);
console.log(`  by kind: ${[...byKind].map(([k, { n, right }]) => `${k} ${right}/${n}`).join(', ')}`);
const heldPairs = ps.filter((p) => p.heldOut);
if (heldPairs.length > 0) {
  const hv = heldPairs.map((p) => ({ p, dup: compareStatements(p.a, p.b).verdict === 'duplicate' }));
  const htp = hv.filter((x) => x.dup && x.p.duplicate).length;
  const hfp = hv.filter((x) => x.dup && !x.p.duplicate).length;
  const hfn = hv.filter((x) => !x.dup && x.p.duplicate).length;
  console.log(
    `  held-out statement frames only (${heldPairs.length} pairs): precision ${(htp / Math.max(1, htp + hfp)).toFixed(3)}, recall ${(htp / Math.max(1, htp + hfn)).toFixed(3)}`,
  );
}
console.log(`  value changes flagged as supersede candidates: ${flaggedUpdates}/${valueChanges}`);

// ── Classification ──
const us = utterances(split, 720, seed);
const classes: Cls[] = ['fact', 'claim', 'definition', 'decision', 'question', 'preference'];
function macroF1(rows: Array<{ label: Cls; got: Cls }>): { f1: number; per: Record<string, number> } {
  const per: Record<string, number> = {};
  for (const c of classes) {
    const t = rows.filter((x) => x.got === c && x.label === c).length;
    const p = t / Math.max(1, rows.filter((x) => x.got === c).length);
    const r = t / Math.max(1, rows.filter((x) => x.label === c).length);
    per[c] = p + r === 0 ? 0 : (2 * p * r) / (p + r);
  }
  return { f1: classes.reduce((s, c) => s + per[c]!, 0) / classes.length, per };
}
const rows = us.map((u) => {
  const got = classify(u.text, extractEntities(u.text)).class;
  if (verbose && got !== u.label) console.log(`  class miss [${u.label} → ${got}] ${JSON.stringify(u.text)}`);
  return { label: u.label, got, heldOut: u.heldOut };
});
const all = macroF1(rows);
console.log(`classification: ${rows.length} utterances; macro-F1 ${all.f1.toFixed(3)} (target ≥ 0.80)`);
console.log(`  per class: ${classes.map((c) => `${c} ${all.per[c]!.toFixed(2)}`).join(', ')}`);
const held = rows.filter((x) => x.heldOut);
if (held.length > 0) {
  const seen = macroF1(rows.filter((x) => !x.heldOut));
  console.log(
    `  phrasings seen in dev: macro-F1 ${seen.f1.toFixed(3)} (${rows.length - held.length}); held-out phrasings only: accuracy ${(held.filter((x) => x.got === x.label).length / held.length).toFixed(3)} (${held.length})`,
  );
}

// ── Extraction over debates ──
/** A debate as one conversation source in its room. */
const extractorFor = (d: { id: string }) =>
  new SourceExtractor({ sourceId: d.id, scope: { scope: 'room', owner: 'bench', room: d.id }, recordedAt: '2024-01-01T00:00:00.000Z' });
const ds = debates(split, 40, seed);
for (const d of debates(split === 'test' ? 'dev' : 'test', 5, seed + 1)) {
  const warm = new SourceExtractor({ sourceId: 'warm', scope: { scope: 'room', owner: 'bench', room: 'warm' }, recordedAt: new Date(0).toISOString() });
  for (const t of d.turns) warm.add(t);
}
const times: number[] = [];
let turns = 0;
let outcomes = 0;
let failed = 0;
let updates = 0;
let updatesFound = 0;
let evidence = 0;
let evidenceWithItems = 0;
for (const d of ds) {
  const x = extractorFor(d);
  for (const t of d.turns) {
    const t0 = performance.now();
    x.add(t);
    times.push(performance.now() - t0);
    turns++;
  }
  const r = x.result();
  outcomes += r.outcomes.length;
  failed += r.outcomes.filter((o) => o.outcome === 'failed').length;
  const itemOfTurn = (id: string) => r.items.filter((i) => i.provenance.messageIds.includes(id));
  for (const q of d.questions) {
    for (const e of q.evidence) {
      evidence++;
      if (itemOfTurn(e).length > 0) evidenceWithItems++;
    }
    if (q.kind === 'knowledge-update') {
      updates++;
      const [newest, previous] = q.evidence;
      const from = new Set(itemOfTurn(newest!).map((i) => i.id));
      const to = new Set(itemOfTurn(previous!).map((i) => i.id));
      if (r.links.some((l) => l.type === 'supersedes' && from.has(l.from.id) && to.has(l.to.id))) updatesFound++;
    }
  }
}
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
console.log(
  `extraction: ${ds.length} debates, ${turns} turns; per turn p50 ${q(0.5).toFixed(3)} ms, p95 ${q(0.95).toFixed(3)} ms (target ≤ 50), max ${times.at(-1)!.toFixed(3)} ms`,
);
console.log(`  outcomes: ${outcomes}/${turns} turns recorded, ${failed} failed, ${turns - outcomes} lost`);
console.log(`  gold evidence turns with at least one item: ${evidenceWithItems}/${evidence}`);
console.log(`  knowledge updates linked newest → previous by supersedes: ${updatesFound}/${updates}`);

// ── Supersedes on the harder debates (distractor turns that share a fact's words) ──
// Every knowledge-update question's evidence is one speaker's chain of values, newest first: each value
// should supersede the one before it (linked), and no link should join a fact turn to a turn outside its
// chain (a false supersede, e.g. "I live in Lisbon now" replacing "I read that Lisbon is building a tram line").
{
  const hard = debates(split, 40, seed, { sessions: 5, distractors: true, paraphrase: true });
  let chained = 0;
  let linked = 0;
  let touching = 0;
  let wrong = 0;
  for (const d of hard) {
    const x = extractorFor(d);
    for (const t of d.turns) x.add(t);
    const r = x.result();
    const turnOf = new Map(r.items.map((i) => [i.id, i.provenance.messageIds[0]]));
    const chains = d.questions.filter((q) => q.kind === 'knowledge-update').map((q) => q.evidence);
    const chainOf = new Map(chains.flatMap((c) => c.map((t) => [t, c] as const)));
    const links = r.links.filter((l) => l.type === 'supersedes').map((l) => [turnOf.get(l.from.id)!, turnOf.get(l.to.id)!] as const);
    for (const c of chains)
      for (let i = 0; i + 1 < c.length; i++) {
        chained++;
        if (links.some(([from, to]) => from === c[i] && to === c[i + 1])) linked++;
        else if (verbose) {
          const text = (id: string) => d.turns.find((t) => t.id === id)?.text;
          const got = links.filter(([from]) => from === c[i]).map(([, to]) => `${to} ${JSON.stringify(text(to))}`);
          console.log(
            `  unlinked: ${c[i]} ${JSON.stringify(text(c[i]!))} → ${c[i + 1]} ${JSON.stringify(text(c[i + 1]!))}; links from it: ${got.join('; ') || 'none'}`,
          );
        }
      }
    for (const [from, to] of links) {
      if (!chainOf.has(from) && !chainOf.has(to)) continue;
      touching++;
      if (chainOf.get(from) !== chainOf.get(to)) {
        wrong++;
        if (verbose) {
          const text = (id: string) => d.turns.find((t) => t.id === id)?.text;
          console.log(`  false: ${from} ${JSON.stringify(text(from))} supersedes ${to} ${JSON.stringify(text(to))}`);
        }
      }
    }
  }
  console.log(
    `supersedes on the harder debates (${hard.length}, 5 sessions, distractors): chain steps linked ${linked}/${chained}; links touching a fact turn ${touching}, of them joining it to a turn outside its chain ${wrong}`,
  );
}
