/**
 * Counting an embedding model's tokens, so a chunk never exceeds its window.
 *
 * For BERT-family models (all-minilm, nomic-embed-text, mxbai-embed-large)
 * this is the model's own WordPiece vocabulary, read from Ollama
 * (`/api/show` verbose: `tokenizer.ggml.tokens`), applied the way Ollama's
 * runner applies it (llama.cpp's word-piece tokenizer):
 *
 *   1. Unicode NFD, accents (combining marks) dropped, then lower case;
 *   2. words split on whitespace; every punctuation character, every ASCII
 *      symbol and every CJK ideograph is a word of its own;
 *   3. each word, prefixed with U+2581 (the vocabulary marks word starts that
 *      way, where BERT's files write `##` on continuations), is cut greedily
 *      into the longest pieces the vocabulary has; a word with any position
 *      that no piece covers is one unknown token.
 *
 * The count is what Ollama reports as `prompt_eval_count`, which excludes
 * [CLS] and [SEP]; callers keep room for those two. tests/code/tokens.test.ts
 * checks the count against Ollama on real code.
 *
 * Models with another tokenizer get a conservative estimate instead.
 */

export type TokenizerSpec =
  /** `id` names the vocabulary (the model digest), so a thread builds each one once. */
  | { kind: 'wordpiece'; id: string; vocab: readonly string[] }
  /** Characters per token assumed for models whose vocabulary we do not read; low on purpose. */
  | { kind: 'estimate'; charsPerToken: number };

export interface TokenCounter {
  count(text: string): number;
  /** The longest prefix of `text` with at most `max` tokens, cut at a word boundary where there is one. */
  truncate(text: string, max: number): string;
}

const phantom = '\u2581';

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const whitespace = /\s/u;
const punctuation = /\p{P}/u;
const symbol = /\p{S}/u;
const accents = /\p{Mn}/gu;

/** The words of step 2, each with its start offset in the original text (for truncation). */
function words(text: string): { word: string; start: number; end: number }[] {
  const out: { word: string; start: number; end: number }[] = [];
  let current = '';
  let start = 0;
  let offset = 0;
  const flush = (end: number) => {
    if (current) out.push({ word: current, start, end });
    current = '';
  };
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const here = offset;
    offset += ch.length;
    if (whitespace.test(ch)) {
      flush(here);
      continue;
    }
    const norm = ch.normalize('NFD').replace(accents, '').toLowerCase();
    if (!norm) continue;
    if (punctuation.test(ch) || (cp < 0x7f && symbol.test(ch)) || isCjk(cp)) {
      flush(here);
      out.push({ word: norm, start: here, end: offset });
      continue;
    }
    if (!current) start = here;
    current += norm;
  }
  flush(offset);
  return out;
}

export class WordPieceCounter implements TokenCounter {
  private readonly pieces: Set<string>;
  private readonly maxPiece: number;
  private readonly cache = new Map<string, number>();

  constructor(vocab: readonly string[]) {
    this.pieces = new Set(vocab);
    this.maxPiece = vocab.reduce((m, t) => Math.max(m, t.length), 1);
  }

  /** Tokens of one word (step 3). */
  private wordTokens(word: string): number {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const w = phantom + word;
    let n = 0;
    let i = 0;
    while (i < w.length) {
      let matched = 0;
      for (let len = Math.min(this.maxPiece, w.length - i); len > 0; len--) {
        if (this.pieces.has(w.slice(i, i + len))) {
          matched = len;
          break;
        }
      }
      if (matched === 0) {
        n = 1;
        break;
      }
      n++;
      i += matched;
    }
    if (this.cache.size > 200_000) this.cache.clear();
    this.cache.set(word, n);
    return n;
  }

  count(text: string): number {
    let n = 0;
    for (const w of words(text)) n += this.wordTokens(w.word);
    return n;
  }

  truncate(text: string, max: number): string {
    let n = 0;
    let end = 0;
    for (const w of words(text)) {
      n += this.wordTokens(w.word);
      if (n > max) break;
      end = w.end;
    }
    return text.slice(0, end);
  }
}

export class EstimateCounter implements TokenCounter {
  constructor(private readonly charsPerToken: number) {}

  count(text: string): number {
    return Math.ceil(text.length / this.charsPerToken);
  }

  truncate(text: string, max: number): string {
    const cut = Math.floor(max * this.charsPerToken);
    if (text.length <= cut) return text;
    const space = text.lastIndexOf(' ', cut);
    return text.slice(0, space > cut / 2 ? space : cut);
  }
}

const counters = new Map<string, WordPieceCounter>();

export function tokenCounter(spec: TokenizerSpec): TokenCounter {
  if (spec.kind === 'estimate') return new EstimateCounter(spec.charsPerToken);
  let c = counters.get(spec.id);
  if (!c) {
    c = new WordPieceCounter(spec.vocab);
    // A handful of models at most; keep the newest few.
    if (counters.size >= 4) counters.delete(counters.keys().next().value!);
    counters.set(spec.id, c);
  }
  return c;
}
