/**
 * The retrieval benchmark's corpus and queries, from a real library:
 *
 * - the indexed tree is the library with every comment and docstring
 *   blanked out (a Python docstring becomes `...`, so a body that was only a
 *   docstring stays valid); lines keep their numbers, so a definition's span
 *   is the same in both versions;
 * - each documented definition (function, method, class) gives one query:
 *   the first sentence of its docstring, JSDoc tags and markup removed.
 *   Queries under 4 words are dropped; queries that contain the definition's
 *   own name are kept but reported apart (they are easy for text search);
 *   texts shared by several definitions are dropped (no single answer);
 * - a hit is relevant when it is a chunk of the same file overlapping the
 *   definition's lines (a class chunk only for a class query), so every part
 *   of a split definition counts;
 * - queries go to a dev split (30%, for tuning) or a test split (70%, for
 *   the reported figures) by a hash of library, path and name: stable from
 *   run to run.
 */
import { createHash } from 'node:crypto';
import type Parser from 'tree-sitter';
import { languageOf } from '../../shared/index.ts';
import { parserFor } from '../../workers/chunking/chunker.ts';
import { extractSource } from '../../workers/code/extract.ts';
import type { Library } from './libraries.ts';
import { librarySources } from './libraries.ts';

export interface Query {
  id: string;
  library: string;
  text: string;
  path: string;
  symbol: string;
  kind: 'function' | 'method' | 'class';
  startLine: number;
  endLine: number;
  containsName: boolean;
  split: 'dev' | 'test';
}

export interface Corpus {
  library: Library;
  /** The stripped tree, path → content. */
  files: Record<string, string>;
  queries: Query[];
  dropped: { short: number; duplicate: number };
}

/** Blanks [from, to) of `chars`, keeping newlines. */
function blank(chars: string[], from: number, to: number, replacement = ''): void {
  for (let i = from; i < to; i++) if (chars[i] !== '\n') chars[i] = ' ';
  for (let i = 0; i < replacement.length && from + i < to; i++) chars[from + i] = replacement[i]!;
}

/** The library file without comments and docstrings, same lines. Offsets are UTF-16, as tree-sitter's. */
export function stripDocs(path: string, content: string): string {
  const language = languageOf(path);
  if (!language) return content;
  const tree = parserFor(language).parse(content);
  const chars = [...content.split('')];
  const walk = (node: Parser.SyntaxNode, firstInBody: boolean) => {
    if (node.type === 'comment' || node.type === 'hash_bang_line') {
      blank(chars, node.startIndex, node.endIndex);
      return;
    }
    if (
      language === 'python' &&
      firstInBody &&
      node.type === 'expression_statement' &&
      node.namedChildCount === 1 &&
      node.namedChildren[0]!.type === 'string'
    ) {
      blank(chars, node.startIndex, node.endIndex, '...');
      return;
    }
    node.namedChildren.forEach((c, i) => walk(c, i === 0 && (node.type === 'block' || node.type === 'module')));
  };
  walk(tree.rootNode, false);
  return chars
    .join('')
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/** The first sentence of a docstring, as a person would type it. */
export function firstSentence(doc: string): string {
  const body = doc.split(/\n\s*@/)[0]!.split(/\n\s*\n/)[0]!;
  const plain = body
    .replace(/\{@link\s+([^}|]+)(\|[^}]*)?\}/g, '$1')
    .replace(/`{1,3}/g, '')
    .replace(/\*\*?/g, '')
    .replace(/\b_\./g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const m = plain.match(/^(.+?[.!?])(\s|$)/);
  return (m ? m[1]! : plain).trim();
}

const fnv = (s: string) => createHash('sha256').update(s).digest().readUInt32BE(0);

export function buildCorpus(library: Library): Corpus {
  const sources = librarySources(library);
  const files: Record<string, string> = {};
  const candidates: Omit<Query, 'id' | 'split'>[] = [];
  let short = 0;
  for (const src of sources) {
    files[src.path] = stripDocs(src.path, src.content);
    const extracted = extractSource(src, { maxTokens: 100_000, tokenizer: { kind: 'estimate', charsPerToken: 4 } });
    for (const s of extracted.symbols) {
      if (!s.docstring || (s.kind !== 'function' && s.kind !== 'method' && s.kind !== 'class')) continue;
      const text = firstSentence(s.docstring);
      if (text.split(/\s+/).filter(Boolean).length < 4) {
        short++;
        continue;
      }
      const name = s.name.toLowerCase();
      candidates.push({
        library: library.name,
        text,
        path: src.path,
        symbol: s.qualifiedName,
        kind: s.kind,
        startLine: s.startLine,
        endLine: s.endLine,
        containsName: name.length > 2 && new RegExp(`\\b${name.replace(/[$]/g, '\\$')}\\b`).test(text.toLowerCase()),
      });
    }
  }
  const counts = new Map<string, number>();
  for (const c of candidates) counts.set(c.text.toLowerCase(), (counts.get(c.text.toLowerCase()) ?? 0) + 1);
  const unique = candidates.filter((c) => counts.get(c.text.toLowerCase()) === 1);
  const queries = unique.map((c) => {
    const key = `${library.name}|${c.path}|${c.symbol}|${c.startLine}`;
    return { ...c, id: key, split: (fnv(key) % 10 < 3 ? 'dev' : 'test') as Query['split'] };
  });
  return { library, files, queries, dropped: { short, duplicate: candidates.length - unique.length } };
}

/** Whether a hit answers the query (see the file comment). */
export function relevant(q: Query, hit: { path: string; kind: string; startLine: number; endLine: number }): boolean {
  if (hit.path !== q.path) return false;
  if (hit.kind === 'class' && q.kind !== 'class') return false;
  return hit.startLine <= q.endLine && hit.endLine >= q.startLine;
}
