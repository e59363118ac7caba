/**
 * One source file to what the code index stores: its definitions' metadata
 * (symbols), its imports, and chunks that each fit the embedding model's
 * window. Pure and synchronous, like the chunker it builds on: it runs in
 * the chunk pool's threads (workers/chunking/thread.ts) and in tests.
 *
 * Which definitions count is the chunker's rule (docs/chunking.md): named
 * functions, classes and methods that are not inside a function; in
 * TypeScript also interfaces, type aliases and enums, as symbols only.
 *
 * A chunk is what gets embedded:
 *
 *     <path> › <Class> › <signature>          the header: where and what
 *     <docstring's first line>                (when there is one)
 *     <the definition's source>
 *
 * and never more than `maxTokens` tokens of the model (platform/vectors/
 * tokens.ts counts them as Ollama does). A definition that does not fit is
 * split at syntax boundaries: between statements, preferring the shallowest
 * ones, and only between lines inside a statement when one statement alone
 * is too long; every part repeats the header, marked `(part k/n)`. A class
 * that does not fit becomes its skeleton (the class line, its docstring,
 * its fields and its members' signatures), since its methods are chunks of
 * their own. Top-level code outside every definition (imports, constants,
 * scripts) becomes `module` chunks, cut between top-level statements.
 */
import { hash } from 'node:crypto';
import type Parser from 'tree-sitter';
import { splitIdentifier, tokenCounter, type TokenCounter, type TokenizerSpec } from '../../platform/vectors/index.ts';
import type { SymbolRecord } from '../../platform/code/index.ts';
import { languageOf, type ChunkKind, type CodeLanguage, type ImportRef, type SymbolKind } from '../../shared/index.ts';
// The node types that decide the walk are the chunker's: one grammar reading for chunks and for symbols.
import { anonymousScopes, functionValues, parserFor, pythonContainers, scriptOpaque, sourceText } from '../chunking/chunker.ts';

export interface ExtractOptions {
  /** Tokens per chunk, header included. */
  maxTokens: number;
  tokenizer: TokenizerSpec;
}

export interface ExtractedChunk {
  kind: ChunkKind;
  /** Qualified name of the definition, null for module code. */
  symbol: string | null;
  /** 1-based, inclusive: the lines of `code`. */
  startLine: number;
  endLine: number;
  header: string;
  code: string;
  /** header + "\n" + code: what is embedded. */
  text: string;
  tokens: number;
  /** sha256 of `text`, hex: equal text, equal vector. */
  contentHash: string;
  /** 1-based part of a split definition, and how many parts it has. */
  part: number;
  parts: number;
  /**
   * The definition said in words, for its second representation (a vector
   * and a full-text column of its own): `add item (inventory): def add_item(self, name)`.
   * Null for module code.
   */
  nameText: string | null;
}

export interface ExtractedFile {
  path: string;
  language: CodeLanguage | null;
  error?: string;
  imports: ImportRef[];
  symbols: SymbolRecord[];
  chunks: ExtractedChunk[];
}

export interface SourceInput {
  path: string;
  language?: CodeLanguage;
  content: string;
}

type Node = Parser.SyntaxNode;

const maxSignature = 240;
const maxDocstring = 4000;

/** A definition found by the walk: its symbol, and whether it becomes chunks. */
interface Definition {
  symbol: SymbolRecord;
  node: Node;
  /** Where its source starts: its decorators, or `export`. */
  start: number;
  end: number;
  /** The node whose body statements are the cut points (function body / class body). */
  body: Node | null;
  chunked: boolean;
  /** Class members' signature ranges for a skeleton (classes only). */
  classNode?: Node;
}

export function extractSource(file: SourceInput, opts: ExtractOptions): ExtractedFile {
  const language = file.language ?? languageOf(file.path);
  const empty = { path: file.path, imports: [], symbols: [], chunks: [] };
  if (language === null) return { ...empty, language: null, error: 'unsupported file type' };
  const parser = parserFor(language);
  const text = sourceText(file.content);
  let tree: Parser.Tree;
  try {
    tree = parser.parse(text);
  } catch (err) {
    parser.reset();
    return { ...empty, language, error: `tree-sitter could not parse the file: ${err instanceof Error ? err.message : String(err)}` };
  }
  const src = new Source(text, language);
  const defs: Definition[] = [];
  const imports: ImportRef[] = [];
  if (language === 'python') walkPython(tree.rootNode, null, src, defs, imports);
  else walkScript(tree.rootNode, null, src, defs, imports, false);
  const counter = tokenCounter(opts.tokenizer);
  const chunks = buildChunks(file.path, src, tree.rootNode, defs, counter, opts.maxTokens, language);
  return { path: file.path, language, imports, symbols: defs.map((d) => d.symbol), chunks };
}

// ---- source text and positions ----------------------------------------------

/**
 * The text with its lines as the language's own tools count them, for
 * every position the index records (docs/code-search.md, Metadata): Python's
 * `ast` ends lines at LF and CRLF (lone CRs are LFs by now); the TypeScript
 * compiler's `getLineAndCharacterOfPosition` also at U+2028 and U+2029.
 * Columns count what those tools count: UTF-8 bytes for Python (`ast`'s
 * `col_offset`), UTF-16 code units for TypeScript and JavaScript.
 */
class Source {
  readonly lineStarts: number[];
  private readonly utf8Columns: boolean;
  constructor(
    readonly text: string,
    language: CodeLanguage,
  ) {
    this.utf8Columns = language === 'python';
    this.lineStarts = [0];
    const breaks = language === 'python' ? /\n/g : /[\n\u2028\u2029]/g;
    for (const m of text.matchAll(breaks)) this.lineStarts.push(m.index + 1);
  }
  /** Where row's text ends: before its line break (CRLF counted whole), or at the end of the text. */
  lineEnd(row: number): number {
    const next = this.lineStarts[row + 1];
    if (next === undefined) return this.text.length;
    return next >= 2 && this.text[next - 1] === '\n' && this.text[next - 2] === '\r' ? next - 2 : next - 1;
  }
  /** 1-based line and 0-based column of an offset, in the language's own units. */
  position(offset: number): { line: number; column: number } {
    const row = this.line(offset);
    const before = this.text.slice(this.lineStarts[row]!, offset);
    return { line: row + 1, column: this.utf8Columns ? Buffer.byteLength(before, 'utf8') : before.length };
  }
  slice(a: number, b: number): string {
    return this.text.slice(a, b);
  }
  of(n: Node): string {
    return this.text.slice(n.startIndex, n.endIndex);
  }
  /** 0-based line of an offset. */
  line(offset: number): number {
    const s = this.lineStarts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  lineText(row: number): string {
    return this.text.slice(this.lineStarts[row]!, this.lineEnd(row));
  }
}

function qualify(scope: string | null, name: string): string {
  return scope === null ? name : `${scope}.${name}`;
}

function collapse(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > maxSignature ? `${one.slice(0, maxSignature - 1)}…` : one;
}

function symbolOf(
  src: Source,
  node: Node,
  kind: SymbolKind,
  name: string,
  scope: string | null,
  signature: string,
  docstring: string | null,
  startNode: Node = node,
): SymbolRecord {
  const start = src.position(startNode.startIndex);
  const end = src.position(node.endIndex);
  return {
    name,
    qualifiedName: qualify(scope, name),
    kind,
    signature: collapse(signature),
    startLine: start.line,
    startColumn: start.column,
    endLine: end.line,
    endColumn: end.column,
    parent: scope,
    docstring: docstring && docstring.length > maxDocstring ? `${docstring.slice(0, maxDocstring - 1)}…` : docstring,
  };
}

// ---- TypeScript, TSX, JavaScript ------------------------------------------------

/** The JSDoc block right before `node` (or before the export statement holding it), cleaned of its `*` margins. */
function jsDoc(node: Node, src: Source): string | null {
  let target: Node = node;
  while (
    target.parent &&
    (target.parent.type === 'export_statement' || target.parent.type === 'lexical_declaration' || target.parent.type === 'variable_declaration')
  ) {
    if (target.parent.type !== 'export_statement' && target.parent.namedChildCount > 1) break;
    target = target.parent;
  }
  let prev = target.previousNamedSibling;
  while (prev && prev.type === 'decorator') prev = prev.previousNamedSibling;
  if (!prev || prev.type !== 'comment') return null;
  const text = src.of(prev);
  if (!text.startsWith('/**')) return null;
  // Only a comment that ends on the line before (or the line of) the definition documents it.
  if (src.line(target.startIndex) - src.line(prev.endIndex) > 1) return null;
  const body = text
    .slice(3, -2)
    .split('\n')
    .map((l) => l.replace(/^\s*\*? ?/, ''))
    .join('\n')
    .trim();
  return body || null;
}

/** Source text from `from` to the start of `body` (or the whole node): the signature. */
function headText(src: Source, from: number, node: Node, body: Node | null): string {
  return src.slice(from, body ? body.startIndex : node.endIndex);
}

/** `start` of a node without its decorators (TS puts a class's decorators inside the class node). */
function startWithoutDecorators(node: Node): Node {
  for (const c of node.children) if (c.type !== 'decorator' && c.type !== 'comment') return c;
  return node;
}

function walkScript(root: Node, scope: string | null, src: Source, out: Definition[], imports: ImportRef[], insideFunction: boolean): void {
  // `direct`: a child of `root` itself (a class body's members, when scope is set).
  const stack: { node: Node; exportStart: number; direct: boolean }[] = [];
  const visitChildren = (node: Node, exportStart: number, direct = false) => {
    for (let i = node.namedChildCount - 1; i >= 0; i--) stack.push({ node: node.namedChild(i)!, exportStart, direct });
  };
  visitChildren(root, -1, true);
  // TypeScript puts a member's decorators before it in the class body, as siblings.
  let pendingDecorators = -1;
  while (stack.length) {
    const { node, exportStart, direct } = stack.pop()!;
    const type = node.type;
    if (scope !== null && direct && type === 'decorator') {
      if (pendingDecorators < 0) pendingDecorators = node.startIndex;
      continue;
    }
    // A comment between a member's decorators and the member (its JSDoc, say) keeps them together.
    if (scope !== null && direct && type === 'comment' && pendingDecorators >= 0) continue;
    const memberStart = exportStart >= 0 ? exportStart : scope !== null && direct && pendingDecorators >= 0 ? pendingDecorators : node.startIndex;
    if (direct) pendingDecorators = -1;
    switch (type) {
      case 'import_statement': {
        if (!insideFunction && scope === null) imports.push(scriptImport(node, src));
        continue;
      }
      case 'export_statement': {
        const source = node.childForFieldName('source');
        if (source && scope === null) imports.push({ module: stringValue(src.of(source)), names: exportNames(node, src) });
        visitChildren(node, node.startIndex);
        continue;
      }
      case 'function_declaration':
      case 'generator_function_declaration': {
        const name = node.childForFieldName('name');
        const body = node.childForFieldName('body');
        if (name) {
          const sym = symbolOf(
            src,
            node,
            'function',
            src.of(name),
            scope,
            headText(src, node.startIndex, node, body),
            jsDoc(node, src),
            exportStart >= 0 ? node.parent! : node,
          );
          out.push({ symbol: { ...sym, parent: scope }, node, start: memberStart, end: node.endIndex, body, chunked: true });
        }
        continue;
      }
      case 'class_declaration':
      case 'abstract_class_declaration': {
        const name = node.childForFieldName('name');
        if (!name) {
          visitChildren(node, -1);
          continue;
        }
        addClass(node, src.of(name), memberStart, exportStart >= 0 ? node.parent! : startWithoutDecorators(node));
        continue;
      }
      case 'interface_declaration':
      case 'type_alias_declaration':
      case 'enum_declaration': {
        const name = node.childForFieldName('name');
        if (name) {
          const kind: SymbolKind = type === 'interface_declaration' ? 'interface' : type === 'enum_declaration' ? 'enum' : 'type';
          const body = node.childForFieldName('body');
          const sig = type === 'type_alias_declaration' ? src.of(node) : headText(src, node.startIndex, node, body);
          out.push({
            symbol: symbolOf(src, node, kind, src.of(name), scope, sig, jsDoc(node, src), exportStart >= 0 ? node.parent! : node),
            node,
            start: memberStart,
            end: node.endIndex,
            body: null,
            chunked: false,
          });
        }
        continue;
      }
      case 'lexical_declaration':
      case 'variable_declaration': {
        const declarators = node.namedChildren.filter((c) => c.type === 'variable_declarator');
        for (const d of declarators) {
          const name = d.childForFieldName('name');
          const value = d.childForFieldName('value');
          if (!name || name.type !== 'identifier' || !value) {
            if (value) stack.push({ node: value, exportStart: -1, direct: false });
            continue;
          }
          const single = declarators.length === 1;
          const start = single ? memberStart : d.startIndex;
          const end = single ? node.endIndex : d.endIndex;
          const startNode = single ? (exportStart >= 0 ? node.parent! : node) : d;
          if (functionValues.has(value.type)) {
            const body = value.childForFieldName('body');
            const sym = symbolOf(
              src,
              single ? node : d,
              'function',
              src.of(name),
              scope,
              src.slice(startNode.startIndex, body ? body.startIndex : value.endIndex),
              jsDoc(single ? node : d, src),
              startNode,
            );
            out.push({ symbol: sym, node: single ? node : d, start, end, body: body?.type === 'statement_block' ? body : null, chunked: true });
          } else if (value.type === 'class') {
            addClass(value, src.of(name), start, startNode, end, single ? node : d);
          } else {
            stack.push({ node: value, exportStart: -1, direct: false });
          }
        }
        continue;
      }
      case 'method_definition': {
        if (scope === null) {
          visitChildren(node, -1);
          continue;
        }
        const name = node.childForFieldName('name');
        const body = node.childForFieldName('body');
        if (name && body) {
          const sym = symbolOf(
            src,
            node,
            'method',
            src.of(name),
            scope,
            headText(src, startWithoutDecorators(node).startIndex, node, body),
            jsDoc(node, src),
            startWithoutDecorators(node),
          );
          out.push({ symbol: sym, node, start: memberStart, end: node.endIndex, body, chunked: true });
        }
        continue;
      }
      case 'public_field_definition':
      case 'field_definition': {
        if (scope === null) {
          visitChildren(node, -1);
          continue;
        }
        const name = node.childForFieldName('name') ?? node.childForFieldName('property');
        const value = node.childForFieldName('value');
        if (name && value && functionValues.has(value.type)) {
          const body = value.childForFieldName('body');
          const sym = symbolOf(
            src,
            node,
            'method',
            src.of(name),
            scope,
            src.slice(startWithoutDecorators(node).startIndex, body ? body.startIndex : value.endIndex),
            jsDoc(node, src),
            startWithoutDecorators(node),
          );
          out.push({ symbol: sym, node, start: memberStart, end: node.endIndex, body: body?.type === 'statement_block' ? body : null, chunked: true });
        } else if (name && value && value.type === 'class') {
          addClass(value, src.of(name), memberStart, startWithoutDecorators(node), node.endIndex, node);
        } else if (value) {
          // A callback in a field initialiser leaves the class: what it declares is not a member.
          walkScript(value, null, src, out, imports, true);
        }
        continue;
      }
      default: {
        if (anonymousScopes.has(type)) {
          if (exportStart >= 0 && node.parent?.type === 'export_statement') {
            // `export default function () {}` / `export default class {}`.
            const name = node.childForFieldName('name');
            const symbolName = name ? src.of(name) : 'default';
            if (type === 'class') addClass(node, symbolName, exportStart, node.parent);
            else {
              const body = node.childForFieldName('body');
              const sym = symbolOf(
                src,
                node,
                'function',
                symbolName,
                scope,
                src.slice(exportStart, body ? body.startIndex : node.endIndex),
                jsDoc(node, src),
                node.parent,
              );
              out.push({ symbol: sym, node, start: exportStart, end: node.endIndex, body: body?.type === 'statement_block' ? body : null, chunked: true });
            }
            continue;
          }
          if (scope !== null) {
            walkScript(node, null, src, out, imports, true);
            continue;
          }
        }
        if (type === 'call_expression' && scope === null && !insideFunction) {
          const req = requireCall(node, src);
          if (req) imports.push(req);
        }
        if (!scriptOpaque.has(type)) visitChildren(node, type === 'export_statement' ? node.startIndex : -1);
      }
    }
  }

  function addClass(classNode: Node, name: string, start: number, startNode: Node, end = classNode.endIndex, symbolNode: Node = classNode): void {
    const body = classNode.childForFieldName('body');
    const qualified = qualify(scope, name);
    const sym = symbolOf(
      src,
      symbolNode,
      'class',
      name,
      scope,
      src.slice(startWithoutDecorators(startNode).startIndex, body ? body.startIndex : classNode.endIndex),
      jsDoc(symbolNode, src),
      startWithoutDecorators(startNode),
    );
    out.push({ symbol: sym, node: symbolNode, start, end, body, chunked: true, classNode });
    if (body) walkScript(body, qualified, src, out, imports, insideFunction);
  }
}

function stringValue(literal: string): string {
  return literal.replace(/^['"`]|['"`]$/g, '');
}

function scriptImport(node: Node, src: Source): ImportRef {
  const source = node.childForFieldName('source');
  const names: string[] = [];
  for (const c of node.namedChildren) {
    if (c.type === 'import_clause') {
      for (const part of c.namedChildren) {
        if (part.type === 'identifier') names.push(src.of(part));
        else if (part.type === 'namespace_import') names.push(`* as ${src.of(part.namedChildren.at(-1) ?? part)}`);
        else if (part.type === 'named_imports') {
          for (const spec of part.namedChildren) {
            if (spec.type !== 'import_specifier') continue;
            const n = spec.childForFieldName('name');
            const alias = spec.childForFieldName('alias');
            if (n) names.push(alias ? `${src.of(n)} as ${src.of(alias)}` : src.of(n));
          }
        }
      }
    } else if (c.type === 'import_require_clause') {
      const id = c.namedChildren.find((x) => x.type === 'identifier');
      const s = c.namedChildren.find((x) => x.type === 'string');
      if (id) names.push(src.of(id));
      if (s && !source) return { module: stringValue(src.of(s)), names };
    }
  }
  return { module: source ? stringValue(src.of(source)) : '', names };
}

function exportNames(node: Node, src: Source): string[] {
  const clause = node.namedChildren.find((c) => c.type === 'export_clause');
  if (!clause) return ['*'];
  return clause.namedChildren.filter((c) => c.type === 'export_specifier').map((c) => src.of(c.childForFieldName('name') ?? c));
}

/** `require('x')` as a top-level import (CommonJS), with the name it is bound to when there is one. */
function requireCall(node: Node, src: Source): ImportRef | null {
  const fn = node.childForFieldName('function');
  if (!fn || fn.type !== 'identifier' || src.of(fn) !== 'require') return null;
  const arg = node.childForFieldName('arguments')?.namedChildren[0];
  if (!arg || arg.type !== 'string') return null;
  const declarator = node.parent?.type === 'variable_declarator' ? node.parent : null;
  const name = declarator?.childForFieldName('name');
  return { module: stringValue(src.of(arg)), names: name ? [src.of(name)] : [] };
}

// ---- Python ----------------------------------------------------------------------

/** The docstring of a module, class or function body: its first statement, when that is a string. */
function pythonDocstring(body: Node | null, src: Source): string | null {
  const first = body?.namedChildren[0];
  if (!first || first.type !== 'expression_statement') return null;
  const str = first.namedChildren[0];
  if (!str || str.type !== 'string' || first.namedChildCount !== 1) return null;
  const content = str.namedChildren
    .filter((c) => c.type === 'string_content')
    .map((c) => src.of(c))
    .join('');
  return cleanDoc(content) || null;
}

/** inspect.cleandoc: strip the first line, dedent the rest by their common indentation, trim blank edges. */
export function cleanDoc(doc: string): string {
  const lines = doc.replace(/\t/g, '        ').split('\n');
  let indent = Infinity;
  for (const l of lines.slice(1)) {
    const stripped = l.trimStart();
    if (stripped) indent = Math.min(indent, l.length - stripped.length);
  }
  const out = [lines[0]!.trim(), ...lines.slice(1).map((l) => (indent === Infinity ? l : l.slice(indent)).trimEnd())];
  while (out.length && !out[0]) out.shift();
  while (out.length && !out.at(-1)) out.pop();
  return out.join('\n');
}

function pythonImport(node: Node, src: Source): ImportRef[] {
  if (node.type === 'import_statement') {
    return node.namedChildren.map((c) => {
      if (c.type === 'aliased_import') {
        const n = c.childForFieldName('name');
        const a = c.childForFieldName('alias');
        return { module: n ? src.of(n) : '', names: a ? [src.of(a)] : [] };
      }
      return { module: src.of(c), names: [] };
    });
  }
  const mod = node.childForFieldName('module_name');
  const names: string[] = [];
  for (const c of node.namedChildren) {
    if (c === mod) continue;
    if (c.type === 'wildcard_import') names.push('*');
    else if (c.type === 'aliased_import') {
      const n = c.childForFieldName('name');
      const a = c.childForFieldName('alias');
      if (n) names.push(a ? `${src.of(n)} as ${src.of(a)}` : src.of(n));
    } else if (c.type === 'dotted_name') names.push(src.of(c));
  }
  return [{ module: mod ? src.of(mod) : '', names }];
}

function walkPython(root: Node, scope: string | null, src: Source, out: Definition[], imports: ImportRef[]): void {
  const visit = (node: Node, decoratedStart: number) => {
    const type = node.type;
    if (type === 'decorated_definition') {
      const def = node.childForFieldName('definition');
      if (def) visit(def, node.startIndex);
      return;
    }
    if (type === 'function_definition' || type === 'class_definition') {
      const name = node.childForFieldName('name');
      if (!name) return;
      const body = node.childForFieldName('body');
      const start = decoratedStart >= 0 ? decoratedStart : node.startIndex;
      const sig = src.slice(node.startIndex, body ? body.startIndex : node.endIndex).replace(/:\s*$/, '');
      const kind: SymbolKind = type === 'class_definition' ? 'class' : scope === null ? 'function' : 'method';
      const sym = symbolOf(src, node, kind, src.of(name), scope, sig, pythonDocstring(body, src));
      out.push({ symbol: sym, node, start, end: node.endIndex, body, chunked: true, ...(kind === 'class' ? { classNode: node } : {}) });
      if (kind === 'class' && body) walkPython(body, sym.qualifiedName, src, out, imports);
      return;
    }
    if (type === 'import_statement' || type === 'import_from_statement') {
      if (scope === null) imports.push(...pythonImport(node, src));
      return;
    }
    if (type === 'future_import_statement') return;
    if (type === 'module' || pythonContainers.has(type)) for (const c of node.namedChildren) visit(c, -1);
  };
  for (const c of root.namedChildren) visit(c, -1);
}

// ---- chunks ---------------------------------------------------------------------------

/** Nodes whose named children are statements: cut points for splitting. */
const statementParents = new Set(['block', 'statement_block', 'class_body', 'switch_body', 'program', 'module', 'enum_body', 'interface_body']);
const clauseTypes = new Set([
  'elif_clause',
  'else_clause',
  'except_clause',
  'except_group_clause',
  'finally_clause',
  'case_clause',
  'switch_case',
  'switch_default',
  'catch_clause',
  'finally_clause',
]);

/** Line (0-based) → the shallowest statement depth starting on it, inside `node`. */
function cutDepths(node: Node, src: Source, baseDepth: number, into: Map<number, number>): void {
  const stack: { n: Node; depth: number }[] = [{ n: node, depth: baseDepth }];
  while (stack.length) {
    const { n, depth } = stack.pop()!;
    for (const c of n.namedChildren) {
      let d = depth;
      if (statementParents.has(n.type) || clauseTypes.has(c.type)) {
        const row = src.line(c.startIndex);
        // A statement counts as a cut point only when it starts its line.
        if (/^\s*$/.test(src.slice(src.lineStarts[row]!, c.startIndex))) {
          const prev = into.get(row);
          if (prev === undefined || depth < prev) into.set(row, depth);
        }
        d = depth + 1;
      }
      if (c.namedChildCount > 0 && c.type !== 'string' && c.type !== 'template_string' && c.type !== 'comment') stack.push({ n: c, depth: d });
    }
  }
}

interface Piece {
  startRow: number;
  endRow: number;
  /** Set when one line was cut inside: the text of this piece. */
  text?: string;
}

/**
 * Packs rows [first, last] into pieces of at most `budget` tokens, cutting only
 * before rows in `cuts` (depth-ranked) unless a single statement is too long,
 * then between any lines, and inside a line only when a line alone is too long.
 */
function packRows(src: Source, first: number, last: number, cuts: Map<number, number>, budget: number, counter: TokenCounter): Piece[] {
  const tokens: number[] = [];
  for (let r = first; r <= last; r++) tokens.push(counter.count(src.lineText(r)));
  const pieces: Piece[] = [];
  let start = first;
  while (start <= last) {
    // The furthest row `end` such that rows [start, end] fit.
    let end = start - 1;
    let acc = 0;
    while (end + 1 <= last && acc + tokens[end + 1 - first]! <= budget) {
      end++;
      acc += tokens[end - first]!;
    }
    if (end < start) {
      // One line alone is too long: cut it inside.
      let rest = src.lineText(start);
      while (rest) {
        const head = fittingPrefix(rest, counter, budget);
        pieces.push({ startRow: start, endRow: start, text: head });
        rest = rest.slice(head.length);
      }
      start++;
      continue;
    }
    if (end === last) {
      pieces.push({ startRow: start, endRow: end });
      break;
    }
    // Cut before a statement row in (start, end + 1]: the shallowest in the latter half of the span, else the furthest.
    let best = -1;
    let bestDepth = Infinity;
    const half = start + Math.floor((end + 1 - start) / 2);
    for (let r = end + 1; r > start; r--) {
      const d = cuts.get(r);
      if (d === undefined) continue;
      if (r >= half) {
        if (d < bestDepth) {
          best = r;
          bestDepth = d;
        }
      } else {
        if (best < 0) best = r;
        break;
      }
    }
    const cut = best > start ? best : end + 1;
    pieces.push({ startRow: start, endRow: cut - 1 });
    start = cut;
  }
  return pieces;
}

function fittingPrefix(text: string, counter: TokenCounter, max: number): string {
  let lo = 1;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (counter.count(text.slice(0, mid)) <= max) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo);
}

function firstLine(doc: string | null): string | null {
  if (!doc) return null;
  const line =
    doc
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? '';
  return line ? (line.length > 160 ? `${line.slice(0, 159)}…` : line) : null;
}

/** The class with its members' bodies elided: what a class chunk holds when the whole class does not fit. */
function classSkeleton(def: Definition, members: Definition[], src: Source, language: CodeLanguage): string {
  const elide = language === 'python' ? ' ...' : ' { … }';
  let out = '';
  let pos = def.start;
  for (const m of members) {
    if (!m.body || m.start < pos) continue;
    out += src.slice(pos, m.body.startIndex).trimEnd() + elide;
    pos = m.body.endIndex;
  }
  out += src.slice(pos, def.end);
  return out.replace(/\n\s*\n(\s*\n)+/g, '\n\n');
}

function buildChunks(
  path: string,
  src: Source,
  root: Node,
  defs: Definition[],
  counter: TokenCounter,
  maxTokens: number,
  language: CodeLanguage,
): ExtractedChunk[] {
  const chunks: ExtractedChunk[] = [];
  const covered: [number, number][] = [];
  const emit = (
    kind: ChunkKind,
    symbol: string | null,
    headerBase: string,
    doc: string | null,
    pieces: { code: string; startLine: number; endLine: number }[],
    nameText: string | null = null,
  ) => {
    const n = pieces.length;
    pieces.forEach((p, i) => {
      const header = `${headerBase}${n > 1 ? ` (part ${i + 1}/${n})` : ''}${doc ? `\n${doc}` : ''}`;
      const text = `${header}\n${p.code}`;
      chunks.push({
        kind,
        symbol,
        startLine: p.startLine,
        endLine: p.endLine,
        header,
        code: p.code,
        text,
        tokens: counter.count(text),
        contentHash: hash('sha256', text, 'hex'),
        part: i + 1,
        parts: n,
        nameText,
      });
    });
  };
  /** `add item (inventory): def add_item(self, name)`, cut to the window. */
  const nameTextOf = (sym: SymbolRecord): string => {
    const words = splitIdentifier(sym.name).join(' ') || sym.name;
    const parent = sym.parent
      ? sym.parent
          .split('.')
          .map((p) => splitIdentifier(p).join(' '))
          .join(' ')
      : '';
    const text = `${words}${parent ? ` (${parent})` : ''}: ${sym.signature}`;
    return counter.count(text) <= maxTokens ? text : fittingPrefix(text, counter, maxTokens);
  };
  /** A header that leaves at least a third of the window to the code. */
  const fitHeader = (base: string, doc: string | null): { base: string; doc: string | null; tokens: number } => {
    // The "(part k/n)" suffix, budgeted up front.
    const suffix = 8;
    let b = base;
    let d = doc;
    const total = () => counter.count(b) + (d ? counter.count(d) : 0) + suffix;
    if (total() > maxTokens / 3) d = null;
    if (total() > maxTokens / 3) b = fittingPrefix(b, counter, Math.floor(maxTokens / 3) - suffix);
    return { base: b, doc: d, tokens: total() };
  };

  const chunkedDefs = defs.filter((d) => d.chunked);
  for (const def of chunkedDefs) {
    const sym = def.symbol;
    const scopePath = sym.parent ? sym.parent.split('.').join(' › ') : null;
    const h = fitHeader(`${path} › ${scopePath ? `${scopePath} › ` : ''}${sym.signature}`, firstLine(sym.docstring));
    const budget = maxTokens - h.tokens;
    const startRow = src.line(def.start);
    const endRow = src.line(Math.max(def.start, def.end - 1));
    const code = src.slice(def.start, def.end).trimEnd();
    /** Rows [a, b] of the definition; the first row from where the definition starts. */
    const rows = (a: number, b: number) => src.slice(a === startRow ? def.start : src.lineStarts[a]!, b === endRow ? def.end : src.lineEnd(b)).trimEnd();
    if (sym.parent === null) covered.push([startRow, endRow]);
    if (counter.count(code) <= budget) {
      emit(sym.kind as ChunkKind, sym.qualifiedName, h.base, h.doc, [{ code, startLine: startRow + 1, endLine: endRow + 1 }], nameTextOf(sym));
      continue;
    }
    if (sym.kind === 'class') {
      const members = chunkedDefs
        .filter((m) => m.symbol.parent === sym.qualifiedName && m.start >= def.start && m.end <= def.end)
        .sort((a, b) => a.start - b.start);
      const skeleton = classSkeleton(def, members, src, language).trimEnd();
      if (counter.count(skeleton) <= budget) {
        emit('class', sym.qualifiedName, h.base, h.doc, [{ code: skeleton, startLine: startRow + 1, endLine: endRow + 1 }], nameTextOf(sym));
        continue;
      }
      // Even the skeleton is too long (a class of many members): its lines, packed.
      const lines = skeleton.split('\n');
      const parts: { code: string; startLine: number; endLine: number }[] = [];
      let current: string[] = [];
      let acc = 0;
      for (const line of lines) {
        const t = counter.count(line);
        if (current.length && acc + t > budget) {
          parts.push({ code: current.join('\n'), startLine: startRow + 1, endLine: endRow + 1 });
          current = [];
          acc = 0;
        }
        if (t > budget) {
          parts.push({ code: fittingPrefix(line, counter, budget), startLine: startRow + 1, endLine: endRow + 1 });
          continue;
        }
        current.push(line);
        acc += t;
      }
      if (current.length) parts.push({ code: current.join('\n'), startLine: startRow + 1, endLine: endRow + 1 });
      emit('class', sym.qualifiedName, h.base, h.doc, parts, nameTextOf(sym));
      continue;
    }
    const cuts = new Map<number, number>();
    if (def.body) cutDepths(def.body, src, 0, cuts);
    const pieces = packRows(src, startRow, endRow, cuts, budget, counter);
    emit(
      sym.kind as ChunkKind,
      sym.qualifiedName,
      h.base,
      h.doc,
      pieces.map((p) => ({
        code: p.text ?? rows(p.startRow, p.endRow),
        startLine: p.startRow + 1,
        endLine: p.endRow + 1,
      })),
      nameTextOf(sym),
    );
  }

  // Module code: the lines no top-level definition covers.
  const isCovered = new Uint8Array(src.lineStarts.length);
  for (const [a, b] of covered) isCovered.fill(1, a, b + 1);
  const moduleCuts = new Map<number, number>();
  cutDepths(root, src, 0, moduleCuts);
  const h = fitHeader(`${path} › (module)`, null);
  let row = 0;
  const lastRow = src.lineStarts.length - 1;
  while (row <= lastRow) {
    if (isCovered[row] || !src.lineText(row).trim()) {
      row++;
      continue;
    }
    let end = row;
    while (end + 1 <= lastRow && !isCovered[end + 1]) end++;
    while (end > row && !src.lineText(end).trim()) end--;
    const text = src.slice(src.lineStarts[row]!, src.lineEnd(end)).trimEnd();
    // A lone brace, a shebang or a few characters of glue are not worth a vector.
    if (text.replace(/\s+/g, '').length >= 40) {
      const pieces = packRows(src, row, end, moduleCuts, maxTokens - h.tokens, counter);
      const parts = pieces.map((p) => ({
        code: p.text ?? src.slice(src.lineStarts[p.startRow]!, src.lineEnd(p.endRow)).trimEnd(),
        startLine: p.startRow + 1,
        endLine: p.endRow + 1,
      }));
      // Each module piece stands alone: numbering pieces of unrelated glue would say nothing.
      for (const part of parts) if (part.code.trim()) emit('module', null, h.base, null, [part]);
    }
    row = end + 1;
  }
  return chunks;
}
