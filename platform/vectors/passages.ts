/**
 * Plain text to passages that each fit an embedding model's window: a
 * model embeds only its first N tokens, so a long document embedded whole is
 * a vector of its opening. Paragraphs are packed greedily; a paragraph too
 * long on its own is cut between sentences, and a sentence too long between
 * words.
 */
import type { TokenCounter } from './tokens.ts';

export interface Passage {
  /** 0-based position in the document. */
  index: number;
  text: string;
}

function pieces(text: string, level: 'paragraph' | 'sentence' | 'word'): string[] {
  switch (level) {
    case 'paragraph':
      return text
        .split(/\n\s*\n/)
        .map((p) => p.trim())
        .filter(Boolean);
    case 'sentence':
      return text
        .split(/(?<=[.!?。！？])\s+/)
        .map((p) => p.trim())
        .filter(Boolean);
    case 'word':
      return text.split(/\s+/).filter(Boolean);
  }
}

const finer = { paragraph: 'sentence', sentence: 'word', word: undefined } as const;
const joiner = { paragraph: '\n\n', sentence: ' ', word: ' ' } as const;

export function splitPassages(text: string, counter: TokenCounter, maxTokens: number): Passage[] {
  const out: string[] = [];
  const pack = (parts: string[], level: 'paragraph' | 'sentence' | 'word') => {
    let current = '';
    for (const part of parts) {
      const candidate = current ? current + joiner[level] + part : part;
      if (counter.count(candidate) <= maxTokens) {
        current = candidate;
        continue;
      }
      if (current) out.push(current);
      current = '';
      if (counter.count(part) <= maxTokens) {
        current = part;
        continue;
      }
      const next = finer[level];
      if (next) pack(pieces(part, next), next);
      else {
        // One word longer than the window (a URL, a hash run): cut it.
        let rest = part;
        while (rest) {
          const head = fittingPrefix(rest, counter, maxTokens);
          out.push(head);
          rest = rest.slice(head.length);
        }
      }
    }
    if (current) out.push(current);
  };
  pack(pieces(text, 'paragraph'), 'paragraph');
  return out.map((t, index) => ({ index, text: t }));
}

/** The longest prefix of `text` within `maxTokens` (at least one character), by binary search on its length. */
export function fittingPrefix(text: string, counter: TokenCounter, maxTokens: number): string {
  let lo = 1;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (counter.count(text.slice(0, mid)) <= maxTokens) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo);
}
