/**
 * Word-level text handling shared by classification, topics and dedup:
 * tokens, contractions, a light stemmer, stopwords and a small synonym map.
 * Everything here is deterministic and allocation-light: it runs on every
 * sentence of every turn.
 */

/** Tokens: codes and numbers stay whole (`asr1603`, `10:40`, `3.5`), words keep inner apostrophes. */
const tokenPattern = /\d+(?:[:.,]\d+)*(?:[a-z]+\d*)?|[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

const contractions: Record<string, string[]> = {
  "don't": ['do', 'not'],
  "doesn't": ['does', 'not'],
  "didn't": ['did', 'not'],
  "isn't": ['is', 'not'],
  "aren't": ['are', 'not'],
  "wasn't": ['was', 'not'],
  "weren't": ['were', 'not'],
  "can't": ['can', 'not'],
  cannot: ['can', 'not'],
  "won't": ['will', 'not'],
  "wouldn't": ['would', 'not'],
  "shouldn't": ['should', 'not'],
  "couldn't": ['could', 'not'],
  "haven't": ['have', 'not'],
  "hasn't": ['has', 'not'],
  "hadn't": ['had', 'not'],
  "i'm": ['i', 'am'],
  "i've": ['i', 'have'],
  "i'd": ['i', 'would'],
  "i'll": ['i', 'will'],
  "we're": ['we', 'are'],
  "we've": ['we', 'have'],
  "we'll": ['we', 'will'],
  "we'd": ['we', 'would'],
  "you're": ['you', 'are'],
  "they're": ['they', 'are'],
  "it's": ['it', 'is'],
  "that's": ['that', 'is'],
  "there's": ['there', 'is'],
  "let's": ['let', 'us'],
  "what's": ['what', 'is'],
  "he's": ['he', 'is'],
  "she's": ['she', 'is'],
};

/** Lowercased tokens with contractions expanded and possessive `'s` dropped. */
export function words(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().normalize('NFKC').matchAll(tokenPattern)) {
    const w = m[0].replaceAll('’', "'");
    const expanded = contractions[w];
    if (expanded) out.push(...expanded);
    else if (w.endsWith("n't")) out.push(w.slice(0, -3), 'not');
    else if (w.endsWith("'s")) out.push(w.slice(0, -2));
    else out.push(w);
  }
  return out;
}

/** Function words and fillers: they carry no content for overlap or topics. */
export const stopwords = new Set(
  (
    'a an the and or but if then than so of to in on at by for with from into onto over under about as is are was were be been being am ' +
    'do does did doing have has had having i me my mine we us our you your he him his she her it its they them their this that these those ' +
    'there here what which who whom whose when where why how all any both each few more most other some such only own same too very can ' +
    'will would should could may might must shall just also really quite basically honestly actually well um uh okay ok ' +
    'yes yeah oh hey hi hmm still even now get got getting let us up out one ever bit lot lots'
  ).split(' '),
);

/** Words that negate: two statements that differ in negation are never duplicates. */
export const negations = new Set(['not', 'no', 'never', 'none', 'nobody', 'nothing', 'neither', 'nor', 'without', 'hardly']);

/** Light stemming: enough to equate plurals and common verb forms, never so much that values collide. */
export function stem(w: string): string {
  if (w.length <= 3 || /\d/.test(w)) return w;
  let s = w;
  if (s.endsWith('ies') && s.length > 4) return `${s.slice(0, -3)}y`;
  if (s.endsWith('sses')) s = s.slice(0, -2);
  else if (s.endsWith('ing') && s.length > 5) s = undouble(s.slice(0, -3));
  else if (s.endsWith('ed') && s.length > 4) s = undouble(s.slice(0, -2));
  else if (/(?:ch|sh|x|z|ss)es$/.test(s)) s = s.slice(0, -2);
  else if (s.endsWith('s') && !s.endsWith('ss') && !s.endsWith('us') && !s.endsWith('is')) s = s.slice(0, -1);
  if (s.endsWith('e') && s.length > 3) s = s.slice(0, -1);
  return s;
}

function undouble(w: string): string {
  return /([b-df-hj-np-tv-z])\1$/.test(w) && !/(?:ll|ss|zz)$/.test(w) ? w.slice(0, -1) : w.endsWith('e') ? w.slice(0, -1) : w;
}

/**
 * Synonym groups, canonicalised to their first member after stemming. Only
 * words that paraphrase each other in statements about preferences, plans and
 * schedules; values (drinks, places, names) are never grouped.
 */
const synonymGroups: string[][] = [
  ['prefer', 'like', 'love', 'enjoy', 'fond', 'favourite', 'favorite', 'rather', 'fan'],
  ['dislike', 'hate', 'detest', 'loathe'],
  ['drink', 'have', 'take', 'order', 'grab', 'sip'],
  ['move', 'reschedule', 'shift', 'push', 'postpone', 'delay', 'bump'],
  ['start', 'begin', 'kick', 'commence'],
  ['finish', 'end', 'complete', 'wrap', 'conclude'],
  ['use', 'utilise', 'utilize', 'employ', 'rely'],
  ['choose', 'pick', 'select', 'opt', 'go'],
  ['buy', 'purchase', 'acquire'],
  ['big', 'large', 'huge'],
  ['small', 'little', 'tiny'],
  ['fast', 'quick', 'rapid', 'speedy'],
  ['show', 'indicate', 'demonstrate', 'reveal', 'suggest'],
  ['say', 'state', 'mention', 'claim', 'note', 'tell'],
  ['leave', 'depart'],
  ['arrive', 'land', 'reach'],
  ['usually', 'normally', 'typically', 'generally', 'always', 'mostly', 'often'],
  ['morning', 'am'],
  ['cost', 'price', 'priced'],
  ['meeting', 'meetup', 'sync', 'call'],
  ['decide', 'agree', 'settle', 'resolve', 'conclude'],
  ['car', 'vehicle', 'automobile'],
  ['job', 'role', 'position', 'work'],
  ['live', 'reside', 'stay', 'base'],
  ['help', 'assist', 'aid'],
  ['need', 'require'],
];
const synonym = new Map<string, string>();
for (const group of synonymGroups) for (const w of group) synonym.set(stem(w), stem(group[0]!));

/** A word reduced to the form overlap compares: stemmed, then its synonym group. */
export function canonical(w: string): string {
  const s = stem(w);
  return synonym.get(s) ?? s;
}

/**
 * Words that state how a subject relates to a value (lives in, is based in,
 * departs at, goes through, uses for): rewording them paraphrases a
 * statement, so dedup lets them differ. Values (drinks, places, tools, names)
 * are never in this list. Tuned on bench/memory's dev split.
 */
export const relationWords = new Set(
  (
    'live reside base home stay located location residence dwell settle ' +
    'leave depart departure arrive arrival time schedule scheduled set due ' +
    'use run go through via deploy deployment ship rely employ operate ' +
    'drink order have take usual usually normally typically generally mostly day days these lately currently nowadays ' +
    'review meet hold happen take place ' +
    'come total amount sum'
  )
    .split(' ')
    .map((w) => canonical(w)),
);

/** Content words of a text, canonical: no stopwords, no negations (compared separately). */
export function contentWords(text: string): string[] {
  const out: string[] = [];
  for (const w of words(text)) if (!stopwords.has(w) && !negations.has(w)) out.push(canonical(w));
  return out;
}

/** Jaccard overlap of two sets. */
export function jaccard<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}
