/**
 * Dedup without false merges. Two statements are compared in stages:
 *
 * 1. the same bytes (sha256 of the text) → duplicate;
 * 2. the same normalised text (case, punctuation, contractions, leading
 *    fillers) → duplicate;
 * 3. vetoes, before any similarity is trusted:
 *    - a name or code in one that the other lacks → distinct (`near-name`
 *      when they differ by a character or two: ASR1603 and ASR1605), or an
 *      update when the differing name sits in the value position;
 *    - a number, date or negation that differs → an update (a supersede
 *      candidate) when the rest of the frame matches, else distinct;
 *    - content words replaced on both sides ("cortado" ↔ "flat white") → an
 *      update when the frame matches, else distinct;
 * 4. the double gate: the injected similarity (an embedding cosine in
 *    storage; character trigrams by default) AND the overlap of canonical
 *    content words must both clear their thresholds → duplicate.
 *
 * `update` never merges: the caller records the newer item as superseding
 * the older one (same owner and scope only).
 */
import { createHash } from 'node:crypto';
import type { Entity } from '../../shared/index.ts';
import { extractEntities } from './entities.ts';
import { canonical, jaccard, negations, relationWords, stopwords, words } from './text.ts';

/** Similarity of two texts in [0, 1]; storage injects an embedding cosine. */
export type Similarity = (a: string, b: string) => number;

export interface DedupOptions {
  /** @defaultValue lexicalSimilarity */
  similarity?: Similarity;
  /** The gate's similarity threshold. @defaultValue 0.6 */
  minSimilarity?: number;
  /** The gate's content-word overlap threshold (Jaccard). @defaultValue 0.5 */
  minOverlap?: number;
  /**
   * Overlap of the unchanged words (their share of the shorter statement) for a changed value to count as an
   * update of the same statement; below it, two statements that share little more than a value stay apart.
   * @defaultValue 0.5 (chosen on the dev split of bench/memory: 0.3 let 24 of 326 links touching a fact join it to a
   * distractor that only shared its value)
   */
  minFrameOverlap?: number;
}

export type DedupVerdict =
  | { verdict: 'duplicate'; stage: 'hash' | 'normalised' | 'gate'; similarity?: number; overlap?: number }
  | { verdict: 'update'; reason: 'value-changed' | 'negation'; overlap: number }
  | { verdict: 'distinct'; reason: 'near-name' | 'different-entity' | 'different-value' | 'added-detail' | 'gate'; similarity?: number; overlap?: number };

/** What comparisons need of a statement, computed once. */
export interface Fingerprint {
  text: string;
  hash: string;
  normalised: string;
  tokens: ReadonlySet<string>;
  content: ReadonlySet<string>;
  /** Content words in order (positions for the value slot). */
  contentSeq: readonly string[];
  negated: boolean;
  /** Words written capitalised (lowercased here): names a sentence may open with, which stemming must not blur. */
  capitalised: ReadonlySet<string>;
  identities: readonly Entity[];
  values: readonly Entity[];
}

const fillers = new Set(['well', 'so', 'um', 'uh', 'ok', 'okay', 'honestly', 'basically', 'anyway', 'btw', 'yeah', 'oh', 'hey', 'look', 'like']);

export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function normalise(text: string): string {
  const ws = words(text);
  let i = 0;
  while (i < ws.length - 1 && fillers.has(ws[i]!)) i++;
  return ws.slice(i).join(' ');
}

export function fingerprint(text: string, entities: readonly Entity[] = extractEntities(text)): Fingerprint {
  const ws = words(text);
  // A date's words are compared as the date (its instant), not as content: "8 May 2023" and "2023-05-08" say the same.
  const dateWords = new Set(entities.filter((e) => e.kind === 'date').flatMap((e) => words(e.text)));
  const contentSeq = ws.filter((w) => !stopwords.has(w) && !negations.has(w) && !fillers.has(w) && !dateWords.has(w)).map(canonical);
  return {
    text,
    hash: contentHash(text),
    normalised: normalise(text),
    tokens: new Set(ws),
    content: new Set(contentSeq),
    contentSeq,
    negated: ws.filter((w) => negations.has(w)).length % 2 === 1,
    capitalised: new Set([...text.matchAll(/(?<![\p{L}\p{N}])\p{Lu}[\p{Ll}\p{N}]+/gu)].map((m) => m[0].toLowerCase())),
    identities: entities.filter((e) => e.kind === 'name' || e.kind === 'code'),
    values: entities.filter((e) => e.kind === 'number' || e.kind === 'date'),
  };
}

/**
 * The default similarity: the better of the cosine of canonical content words
 * (order-free, synonyms folded, relation words left out) and the cosine of character trigrams. A
 * stand-in for the embedding cosine storage injects.
 */
export function lexicalSimilarity(a: string, b: string): number {
  return Math.max(wordCosine(a, b), trigramSimilarity(a, b));
}

function wordCosine(a: string, b: string): number {
  const count = (t: string) => {
    const m = new Map<string, number>();
    for (const w of words(t)) {
      if (stopwords.has(w) || fillers.has(w)) continue;
      const c = canonical(w);
      if (!relationWords.has(c)) m.set(c, (m.get(c) ?? 0) + 1);
    }
    return m;
  };
  const [ca, cb] = [count(a), count(b)];
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [w, n] of ca) {
    na += n * n;
    dot += n * (cb.get(w) ?? 0);
  }
  for (const n of cb.values()) nb += n * n;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Cosine of character-trigram counts over the normalised texts: a stand-in for an embedding cosine. */
export function trigramSimilarity(a: string, b: string): number {
  const ga = trigrams(normalise(a));
  const gb = trigrams(normalise(b));
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [g, n] of ga) {
    na += n * n;
    dot += n * (gb.get(g) ?? 0);
  }
  for (const n of gb.values()) nb += n * n;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

function trigrams(s: string): Map<string, number> {
  const out = new Map<string, number>();
  const t = ` ${s} `;
  for (let i = 0; i + 3 <= t.length; i++) {
    const g = t.slice(i, i + 3);
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

/** Whether `other` says the entity too: its tokens all present, or (dates) the same day or instant. */
function present(e: Entity, other: Fingerprint): boolean {
  if (e.kind === 'date' && e.value && typeof e.value === 'object' && e.value.iso) {
    const iso = e.value.iso;
    if (other.values.some((o) => o.kind === 'date' && typeof o.value === 'object' && o.value.iso === iso)) return true;
  }
  const ws = words(e.text);
  return ws.length > 0 && ws.every((w) => other.tokens.has(w));
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

const defaults = { minSimilarity: 0.6, minOverlap: 0.5, minFrameOverlap: 0.5 };

export function compareFingerprints(a: Fingerprint, b: Fingerprint, options: DedupOptions = {}): DedupVerdict {
  if (a.hash === b.hash) return { verdict: 'duplicate', stage: 'hash' };
  if (a.normalised === b.normalised) return { verdict: 'duplicate', stage: 'normalised' };
  const o = { ...defaults, ...options };
  const onlyA = [...a.content].filter((w) => !b.content.has(w));
  const onlyB = [...b.content].filter((w) => !a.content.has(w));
  const shared = a.content.size - onlyA.length;
  const frame = shared / Math.max(1, Math.min(a.content.size, b.content.size));
  const overlap = jaccard(a.content, b.content);

  const missingA = a.identities.filter((e) => !present(e, b));
  const missingB = b.identities.filter((e) => !present(e, a));
  if (missingA.length > 0 || missingB.length > 0) {
    const near = missingA.some((x) => missingB.some((y) => nearName(x.text, y.text)));
    if (near) return { verdict: 'distinct', reason: 'near-name', overlap };
    // A name in the value slot ("the lead is Ada" → "the lead is Grace") updates the statement; a different subject is another statement.
    const replaced = missingA.length > 0 && missingB.length > 0;
    const inValueSlot = missingA.every((e) => inSecondHalf(e, a)) && missingB.every((e) => inSecondHalf(e, b));
    if (replaced && inValueSlot && frame >= o.minFrameOverlap && a.negated === b.negated) return { verdict: 'update', reason: 'value-changed', overlap };
    return { verdict: 'distinct', reason: 'different-entity', overlap };
  }
  // Capitalised words that differ by a letter or two ("Atlas" and "Atlae") are near-names even when stemming makes them one.
  const capsA = [...a.capitalised].filter((w) => !b.tokens.has(w));
  const capsB = [...b.capitalised].filter((w) => !a.tokens.has(w));
  if (capsA.some((x) => capsB.some((y) => nearName(x, y)))) return { verdict: 'distinct', reason: 'near-name', overlap };
  const valuesDiffer = a.values.some((e) => !present(e, b)) || b.values.some((e) => !present(e, a));
  if (valuesDiffer)
    return frame >= o.minFrameOverlap ? { verdict: 'update', reason: 'value-changed', overlap } : { verdict: 'distinct', reason: 'different-value', overlap };
  if (a.negated !== b.negated)
    return frame >= o.minFrameOverlap ? { verdict: 'update', reason: 'negation', overlap } : { verdict: 'distinct', reason: 'different-value', overlap };
  // Relation words may be reworded ("lives in" ↔ "is based in"); the other content words are the statement's keys.
  const keyOnlyA = onlyA.filter((w) => !relationWords.has(w));
  const keyOnlyB = onlyB.filter((w) => !relationWords.has(w));
  if (keyOnlyA.length > 0 && keyOnlyB.length > 0) {
    // A replaced head ("Ada leads…" → "Grace leads…") is another subject; a replaced tail is a new value.
    if (inHead(keyOnlyA, a) && inHead(keyOnlyB, b)) return { verdict: 'distinct', reason: 'different-entity', overlap };
    return frame >= o.minFrameOverlap ? { verdict: 'update', reason: 'value-changed', overlap } : { verdict: 'distinct', reason: 'different-value', overlap };
  }
  if (keyOnlyA.length + keyOnlyB.length > 1) return { verdict: 'distinct', reason: 'added-detail', overlap };
  const keyOverlap = jaccard(new Set([...a.content].filter((w) => !relationWords.has(w))), new Set([...b.content].filter((w) => !relationWords.has(w))));
  const similarity = (o.similarity ?? lexicalSimilarity)(a.text, b.text);
  if (similarity >= o.minSimilarity && keyOverlap >= o.minOverlap) return { verdict: 'duplicate', stage: 'gate', similarity, overlap: keyOverlap };
  return { verdict: 'distinct', reason: 'gate', similarity, overlap: keyOverlap };
}

/** Names or codes a character or two apart (ASR1603 and ASR1605, Jon and John): never the same thing by assumption. */
function nearName(x: string, y: string): boolean {
  const [a, b] = [x.toLowerCase(), y.toLowerCase()];
  return a !== b && editDistance(a, b) <= Math.max(1, Math.floor(Math.min(a.length, b.length) / 4));
}

/** Whether every word sits in the first half of the statement's content words. */
function inHead(ws: readonly string[], f: Fingerprint): boolean {
  const half = f.contentSeq.length / 2;
  return ws.every((w) => {
    const i = f.contentSeq.indexOf(w);
    return i >= 0 && i < half;
  });
}

function inSecondHalf(e: Entity, f: Fingerprint): boolean {
  return e.span[0] >= f.text.length / 2;
}

/** Compares two texts (entities extracted here when not given). */
export function compareStatements(a: string, b: string, options: DedupOptions = {}): DedupVerdict {
  return compareFingerprints(fingerprint(a), fingerprint(b), options);
}

/**
 * Statements seen so far, with an inverted index over content words and
 * entities so a new one is compared only with those it shares something with.
 * `check` answers the strongest verdict: a duplicate, else an update, else distinct.
 */
export class DedupIndex<T> {
  private readonly entries: Array<{ fp: Fingerprint; value: T }> = [];
  private readonly byHash = new Map<string, number>();
  private readonly byWord = new Map<string, number[]>();

  constructor(private readonly options: DedupOptions = {}) {}

  /**
   * The strongest verdict against what was seen. `current` says which seen
   * statements still stand: only those can be updated (an older value of a
   * chain was already replaced by its successor).
   */
  check(fp: Fingerprint, current: (value: T) => boolean = () => true): { verdict: DedupVerdict; match: T } | null {
    const exact = this.byHash.get(fp.hash) ?? this.byHash.get(`n:${fp.normalised}`);
    if (exact !== undefined) return { verdict: compareFingerprints(fp, this.entries[exact]!.fp, this.options), match: this.entries[exact]!.value };
    const seen = new Set<number>();
    let update: { verdict: Extract<DedupVerdict, { verdict: 'update' }>; match: T; at: number } | null = null;
    for (const w of fp.content) {
      for (const i of this.byWord.get(w) ?? []) {
        if (seen.has(i)) continue;
        seen.add(i);
        const verdict = compareFingerprints(fp, this.entries[i]!.fp, this.options);
        if (verdict.verdict === 'duplicate') return { verdict, match: this.entries[i]!.value };
        // Of several statements this one updates, the one whose frame it shares most ("I live in Lisbon now"
        // updates "I live in Riga now", not "I read that Lisbon is building a tram line"); the latest among equals.
        if (
          verdict.verdict === 'update' &&
          current(this.entries[i]!.value) &&
          (!update || verdict.overlap > update.verdict.overlap || (verdict.overlap === update.verdict.overlap && i > update.at))
        )
          update = { verdict, match: this.entries[i]!.value, at: i };
      }
    }
    return update && { verdict: update.verdict, match: update.match };
  }

  add(fp: Fingerprint, value: T): void {
    const i = this.entries.push({ fp, value }) - 1;
    if (!this.byHash.has(fp.hash)) this.byHash.set(fp.hash, i);
    if (!this.byHash.has(`n:${fp.normalised}`)) this.byHash.set(`n:${fp.normalised}`, i);
    for (const w of fp.content) {
      const list = this.byWord.get(w);
      if (list) list.push(i);
      else this.byWord.set(w, [i]);
    }
  }
}
