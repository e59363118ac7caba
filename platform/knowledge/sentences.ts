/**
 * Sentences with character spans. A span is [start, end) in the text given,
 * trimmed of whitespace and of Markdown's line markers (`#`, `-`, `*`, `>`,
 * `1.`), so `text.slice(start, end)` is exactly the sentence.
 *
 * Boundaries: `.`, `!`, `?` (and runs of them, with closing quotes or
 * brackets) followed by whitespace; a blank line; a line that starts a
 * Markdown block (heading, list item, quote). Not boundaries: abbreviations
 * (`Dr.`, `e.g.`, `p.m.` before a lower-case word), initials (`J. R.`),
 * decimals and times (`3.5`, `1:56`), which never have whitespace after the dot.
 */
export interface Sentence {
  text: string;
  start: number;
  end: number;
}

const abbreviations = new Set([
  'mr',
  'mrs',
  'ms',
  'dr',
  'prof',
  'sr',
  'jr',
  'st',
  'vs',
  'etc',
  'e.g',
  'i.e',
  'eg',
  'ie',
  'inc',
  'ltd',
  'co',
  'corp',
  'no',
  'approx',
  'dept',
  'est',
  'fig',
  'vol',
  'cf',
  'al',
  'gen',
  'gov',
  'sen',
  'rep',
  'mt',
  'ft',
]);
const clockSuffix = /(?:^|\s)[ap]\.m$/i;
const blockStart = /^[ \t]*(?:#{1,6}\s|[-*+]\s|>\s?|\d{1,3}[.)]\s)/;

export function splitSentences(text: string): Sentence[] {
  const out: Sentence[] = [];
  // Lines first: a blank line or a Markdown block start ends what came before.
  let blockStartAt = 0;
  let pos = 0;
  let afterHeading = false;
  const flush = (from: number, to: number) => splitBlock(text, from, to, out);
  while (pos <= text.length) {
    const nl = text.indexOf('\n', pos);
    const lineEnd = nl === -1 ? text.length : nl;
    const line = text.slice(pos, lineEnd);
    if (line.trim() === '' || blockStart.test(line) || afterHeading) {
      flush(blockStartAt, pos);
      blockStartAt = pos;
    }
    afterHeading = /^[ \t]*#{1,6}\s/.test(line);
    if (nl === -1) break;
    pos = nl + 1;
  }
  flush(blockStartAt, text.length);
  return out;
}

function splitBlock(text: string, from: number, to: number, out: Sentence[]): void {
  let start = from;
  const re = /[.!?]+["'”’)\]]*(?=\s|$)/g;
  re.lastIndex = from;
  for (let m = re.exec(text); m && m.index < to; m = re.exec(text)) {
    const end = m.index + m[0].length;
    if (end > to) break;
    if (m[0][0] === '.' && m[0].length === 1 && !isBoundary(text, start, m.index, end)) continue;
    push(text, start, end, out);
    start = end;
  }
  push(text, start, to, out);
}

function isBoundary(text: string, start: number, dot: number, end: number): boolean {
  const before = /([\p{L}.]+)$/u.exec(text.slice(Math.max(start, dot - 12), dot))?.[1] ?? '';
  const next = /\S/.exec(text.slice(end))?.[0] ?? '';
  if (abbreviations.has(before.toLowerCase())) return false;
  // An initial: one capital letter, the next word capitalised ("J. R. Tolkien").
  if (/^\p{Lu}$/u.test(before) && /\p{Lu}/u.test(next)) return false;
  if (clockSuffix.test(text.slice(Math.max(start, dot - 6), dot)) && /\p{Ll}|\d/u.test(next)) return false;
  return true;
}

function push(text: string, start: number, end: number, out: Sentence[]): void {
  let s = start;
  let e = end;
  while (s < e && /\s/.test(text[s]!)) s++;
  const marker = /^(?:#{1,6}\s+|[-*+]\s+|>\s?|\d{1,3}[.)]\s+)/.exec(text.slice(s, Math.min(e, s + 8)));
  if (marker) s += marker[0].length;
  while (s < e && /\s/.test(text[s]!)) s++;
  while (e > s && /\s/.test(text[e - 1]!)) e--;
  if (e > s) out.push({ text: text.slice(s, e), start: s, end: e });
}
