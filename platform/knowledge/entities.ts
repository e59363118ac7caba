/**
 * Entities in a sentence: dates and times (parsed, verbatim kept), codes
 * (`ASR1603`, `PR-42`, `ISO9001`), numbers (with their unit or currency) and
 * capitalised names (`Ada Lovelace`, `Postgres`, `NASA`). Spans are [start,
 * end) in the sentence. Earlier kinds win overlaps in that order, so the
 * `8` of a date is not also a number and `ASR1603` is a code, not a name.
 *
 * A capitalised word that opens a sentence is a name only if the source also
 * writes it capitalised elsewhere (`knownNames`), or it is part of a longer
 * capitalised run: "Coffee is great" has no name, "Postgres is great" has one
 * when Postgres appears mid-sentence somewhere in the source.
 */
import type { Entity } from '../../shared/index.ts';
import { findTimes } from './dates.ts';

const codePattern = /(?<![\w-])(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z]{2})[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*(?![\w-])/g;
const numberPattern =
  /(?<![\w.,:])\d{1,2}(?::\d{2}){1,2}(?:\s?[ap]\.?m\.?)?(?![\w:])|(?<![\w.,:])(?:[$€£]\s?)?[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?:\s?(?:%|percent\b|k\b|m\b|bn\b|million\b|billion\b))?|(?<![\w.,:])(?:[$€£]\s?)?[-+]?\d+(?:\.\d+)?(?:\s?(?:%|percent\b|k\b|bn\b|million\b|billion\b|ms\b|kg\b|km\b|mb\b|gb\b|tb\b|hours?\b|minutes?\b|days?\b|weeks?\b|months?\b|years?\b|x\b))?/gi;
const namePattern = /(?<![\w'’])(?:\p{Lu}[\p{L}'’]*(?:[ -](?:(?:de|da|del|van|von|der|di|le|la|of)[ -])?\p{Lu}[\p{L}'’]*)*)(?![\w])/gu;

/** Capitalised words that are not names on their own. */
const notNames = new Set(
  (
    'I A An The This That These Those It Its We Our You Your He She They Their There Here What When Where Why How Who Which ' +
    'If But And Or So Yes No Not Also Then Well Sure Okay Ok Hi Hello Thanks Thank Please Maybe Perhaps Actually Honestly Really ' +
    'Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August September October November December ' +
    'Let Lets My Me Is Are Was Were Do Does Did Can Could Would Should Will Shall Might Must Have Has Had Agreed Exactly Right True Indeed Good Great ' +
    'Today Tomorrow Yesterday Everyone Nobody Someone Anyone Every All Some Any Most Many One Two Three First Second Last Next ' +
    'However Although Though Because Since While As At In On Of For To From With By Just Still Even Now Once After Before Decision Note Update'
  ).split(' '),
);

export function extractEntities(sentence: string, knownNames: ReadonlySet<string> = new Set()): Entity[] {
  const taken: Array<[number, number]> = [];
  const out: Entity[] = [];
  const free = (s: number, e: number) => taken.every(([a, b]) => e <= a || s >= b);
  const add = (entity: Entity) => {
    taken.push(entity.span);
    out.push(entity);
  };
  for (const t of findTimes(sentence)) {
    add({
      kind: 'date',
      text: sentence.slice(t.start, t.end),
      key: `date:${t.time.iso ? t.time.iso.slice(0, t.time.precision === 'day' ? 10 : 16) : t.time.verbatim.toLowerCase()}`,
      span: [t.start, t.end],
      value: t.time,
    });
  }
  for (const m of sentence.matchAll(codePattern)) {
    const [s, e] = [m.index, m.index + m[0].length];
    if (free(s, e)) add({ kind: 'code', text: m[0], key: `code:${m[0].toLowerCase()}`, span: [s, e] });
  }
  for (const m of sentence.matchAll(numberPattern)) {
    const [s, e] = [m.index, m.index + m[0].length];
    if (!free(s, e)) continue;
    const value = Number(m[0].replace(/[^\d.+-]/g, ''));
    add({ kind: 'number', text: m[0], key: `number:${m[0].toLowerCase().replace(/\s+/g, '')}`, span: [s, e], ...(Number.isFinite(value) ? { value } : {}) });
  }
  // A sentence in capitals (or nearly) says nothing about which words are names.
  const letters = sentence.replace(/[^\p{L}]/gu, '');
  if (letters.length > 0 && letters.replace(/[^\p{Lu}]/gu, '').length / letters.length > 0.6) return out.sort((a, b) => a.span[0] - b.span[0]);
  const opening = /^[\s"'“‘(\[]*/.exec(sentence)![0].length;
  for (const m of sentence.matchAll(namePattern)) {
    let [s, e] = [m.index, m.index + m[0].length];
    let words = m[0].split(/[ -]/);
    // Leading words that are not names ("The", "When", a sentence's first word) come off the run.
    while (words.length > 0 && (notNames.has(words[0]!) || (s === opening && words.length === 1 && !knownNames.has(words[0]!)))) {
      const drop = words[0]!.length + 1;
      words = words.slice(1);
      s += drop;
    }
    if (words.length === 0 || s >= e) continue;
    while (words.length > 0 && notNames.has(words.at(-1)!)) {
      e -= words.at(-1)!.length + 1;
      words = words.slice(0, -1);
    }
    if (words.length === 0 || !free(s, e)) continue;
    const text = sentence.slice(s, e);
    if (text.length < 2) continue;
    // A possessive is the same entity: "Ada's" is Ada.
    add({ kind: 'name', text, key: nameKey(text), span: [s, e] });
  }
  return out.sort((a, b) => a.span[0] - b.span[0]);
}

/** Capitalised words written mid-sentence anywhere in a text: the names a sentence may open with. */
export function namesUsedMidSentence(sentences: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const s of sentences) {
    for (const m of s.matchAll(/(?<=\S\s+)\p{Lu}[\p{L}'’]*/gu)) if (!notNames.has(m[0])) out.add(m[0]);
  }
  return out;
}

/** The key of a name entity, or of a speaker: lower case, a possessive ending dropped. */
export function nameKey(name: string): string {
  return `name:${name.toLowerCase().replace(/['’]s$/u, '')}`;
}
