/**
 * One source file to its chunks: the functions, classes and methods that
 * tree-sitter finds in it. Pure and synchronous, so the same code runs in the
 * chunk pool's threads (thread.ts) and directly in tests.
 *
 * What becomes a chunk (docs/chunking.md has the examples):
 * - a named definition that is not inside a function: nested helpers belong to
 *   the chunk of the function that holds them;
 * - a class, and then each of its methods again, as `Class.method`, so a class
 *   chunk overlaps its method chunks;
 * - its content is the definition's source text, from its first decorator (or
 *   `export`) to its end, with trailing whitespace dropped; the line range is
 *   exactly the lines of that text.
 *
 * Indices from tree-sitter's node binding are UTF-16 offsets into the JS
 * string (it parses as UTF-16LE), so `content` is a plain `slice`.
 */
import { createHash } from 'node:crypto';
import Parser from 'tree-sitter';
import JavaScript from 'tree-sitter-javascript';
import Python from 'tree-sitter-python';
import TypeScript from 'tree-sitter-typescript';
import type { CodeChunk, CodeChunkResult, CodeLanguage, SourceFile } from '../../shared/index.ts';

export type ChunkKind = CodeChunk['kind'];

/** The chunks of one file. `CodeChunkResult.files` holds the same without the chunks themselves. */
export interface FileChunks {
  path: string;
  /** Null when neither `language` nor the extension named a supported language. */
  language: CodeLanguage | null;
  chunks: CodeChunk[];
  /** Why this file produced nothing. A per-file error never fails the other files of the job. */
  error?: string;
}

const languageByExtension: Readonly<Record<string, CodeLanguage>> = {
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
  '.tsx': 'tsx',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.jsx': 'javascript',
  '.py': 'python',
};

/** The extension of the last path segment, lower-cased, with its dot; '' when there is none. */
function extensionOf(path: string): string {
  const name = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot).toLowerCase() : '';
}

export function languageOf(path: string): CodeLanguage | null {
  return languageByExtension[extensionOf(path)] ?? null;
}

const grammars: Readonly<Record<CodeLanguage, Parser.Language>> = {
  typescript: TypeScript.typescript as Parser.Language,
  tsx: TypeScript.tsx as Parser.Language,
  javascript: JavaScript as Parser.Language,
  python: Python as Parser.Language,
};

// One parser per language and per thread: a Parser is not shareable across
// threads, and creating one per file would redo the language setup each time.
const parsers = new Map<CodeLanguage, Parser>();

function parserFor(language: CodeLanguage): Parser {
  let parser = parsers.get(language);
  if (!parser) {
    parser = new Parser();
    parser.setLanguage(grammars[language]);
    parsers.set(language, parser);
  }
  return parser;
}

export function chunkSource(file: SourceFile): FileChunks {
  const language = file.language ?? languageOf(file.path);
  if (language === null) {
    const ext = extensionOf(file.path);
    return {
      path: file.path,
      language: null,
      chunks: [],
      error: `unsupported file type ${ext ? `"${ext}"` : '(no extension)'}: set language to one of typescript, tsx, javascript, python`,
    };
  }
  const parser = parserFor(language);
  let tree: Parser.Tree;
  try {
    // tree-sitter 0.22 reads a string through its own 32 KB-buffered callback,
    // so inputs of any size parse in one call (0.21 threw at 32 KB).
    tree = parser.parse(file.content);
  } catch (err) {
    parser.reset();
    return { path: file.path, language, chunks: [], error: `tree-sitter could not parse the file: ${err instanceof Error ? err.message : String(err)}` };
  }
  const out = new ChunkCollector(file.path, language, file.content);
  if (language === 'python') collectPython(tree.rootNode, null, out);
  else collectScript(tree.rootNode, null, out);
  return { path: file.path, language, chunks: out.chunks };
}

/** The whole job's result, files in input order. */
export function chunkFiles(files: readonly SourceFile[]): CodeChunkResult {
  const result: CodeChunkResult = { chunks: [], files: [] };
  for (const file of files) appendFileChunks(result, chunkSource(file));
  return result;
}

/** Adds one file's chunks and its summary line to a job result. */
export function appendFileChunks(result: CodeChunkResult, { path, language, chunks, error }: FileChunks): void {
  for (const chunk of chunks) result.chunks.push(chunk);
  result.files.push({ path, language, chunks: chunks.length, ...(error === undefined ? {} : { error }) });
}

class ChunkCollector {
  readonly chunks: CodeChunk[] = [];

  constructor(
    private readonly path: string,
    private readonly language: CodeLanguage,
    private readonly source: string,
  ) {}

  /** A chunk spanning `first`'s start to `last`'s end (they differ when decorators are siblings). */
  add(kind: ChunkKind, symbol: string, first: Parser.SyntaxNode, last: Parser.SyntaxNode = first): void {
    const raw = this.source.slice(first.startIndex, last.endIndex);
    const content = raw.trimEnd();
    let droppedNewlines = 0;
    for (let i = content.length; i < raw.length; i++) if (raw.charCodeAt(i) === 10) droppedNewlines++;
    this.chunks.push({
      path: this.path,
      language: this.language,
      kind,
      symbol,
      startLine: first.startPosition.row + 1,
      endLine: last.endPosition.row + 1 - droppedNewlines,
      contentHash: createHash('sha256').update(content).digest('hex'),
      content,
    });
  }
}

function qualify(scope: string | null, name: string): string {
  return scope === null ? name : `${scope}.${name}`;
}

/**
 * Pre-order walk over `root`'s named descendants. `enter` returns whether to
 * descend into the node under the cursor. Iterative, because expression trees
 * (a long `a + b + ...`) nest deeper than the JS stack allows.
 */
function walkDescendants(root: Parser.SyntaxNode, enter: (cursor: Parser.TreeCursor) => boolean): void {
  const cursor = root.walk();
  if (!cursor.gotoFirstChild()) return;
  let depth = 1;
  for (;;) {
    if (cursor.nodeIsNamed && enter(cursor) && cursor.gotoFirstChild()) {
      depth++;
      continue;
    }
    while (!cursor.gotoNextSibling()) {
      cursor.gotoParent();
      if (--depth === 0) return;
    }
  }
}

// ---- TypeScript, TSX, JavaScript -------------------------------------------

/** Values that make `const name = <value>` a function. */
const functionValues = new Set(['arrow_function', 'function_expression', 'function', 'generator_function']);
/** Nodes that open a function scope without naming a chunk themselves. */
const anonymousScopes = new Set([...functionValues, 'class']);

/** `export function f` and `export class C` cover the `export` (and a TS class's decorators, which sit on it). */
function withExport(node: Parser.SyntaxNode): Parser.SyntaxNode {
  const parent = node.parent;
  return parent?.type === 'export_statement' ? parent : node;
}

/** `const f = () => {}` covers the whole statement, unless it declares several names. */
function declarationOf(declarator: Parser.SyntaxNode): Parser.SyntaxNode {
  const declaration = declarator.parent;
  if (!declaration || (declaration.type !== 'lexical_declaration' && declaration.type !== 'variable_declaration')) return declarator;
  const declarators = declaration.namedChildren.filter((n) => n.type === 'variable_declarator').length;
  return declarators === 1 ? withExport(declaration) : declarator;
}

/** TypeScript puts a member's decorators before it in the class body, as siblings. */
function firstDecorator(member: Parser.SyntaxNode): Parser.SyntaxNode {
  let first = member;
  for (let prev = member.previousNamedSibling; prev?.type === 'decorator'; prev = prev.previousNamedSibling) first = prev;
  return first;
}

/** `scope` is the qualified name of the class whose body is being walked, or null. */
function collectScript(root: Parser.SyntaxNode, scope: string | null, out: ChunkCollector): void {
  const addClass = (symbol: string, classNode: Parser.SyntaxNode, first: Parser.SyntaxNode, last: Parser.SyntaxNode = first): void => {
    out.add('class', symbol, first, last);
    const body = classNode.childForFieldName('body');
    if (body) collectScript(body, symbol, out);
  };

  walkDescendants(root, (cursor) => {
    switch (cursor.nodeType) {
      case 'function_declaration':
      case 'generator_function_declaration': {
        const node = cursor.currentNode;
        const name = node.childForFieldName('name');
        if (name) out.add('function', name.text, withExport(node));
        return false;
      }
      case 'class_declaration':
      case 'abstract_class_declaration': {
        const node = cursor.currentNode;
        const name = node.childForFieldName('name');
        if (!name) return true;
        addClass(qualify(scope, name.text), node, withExport(node));
        return false;
      }
      case 'variable_declarator': {
        const node = cursor.currentNode;
        const name = node.childForFieldName('name');
        const value = node.childForFieldName('value');
        if (name?.type !== 'identifier' || !value) return true;
        if (functionValues.has(value.type)) {
          out.add('function', name.text, declarationOf(node));
          return false;
        }
        if (value.type === 'class') {
          addClass(name.text, value, declarationOf(node));
          return false;
        }
        return true;
      }
      case 'export_statement': {
        // `export default function () {}` and friends: the value has no declaration around it.
        const node = cursor.currentNode;
        const value = node.childForFieldName('value');
        if (!value || !anonymousScopes.has(value.type)) return true;
        const symbol = value.childForFieldName('name')?.text ?? 'default';
        if (value.type === 'class') addClass(symbol, value, node);
        else out.add('function', symbol, node);
        return false;
      }
      case 'method_definition': {
        // Outside a class this is an object literal's method: an anonymous scope.
        if (scope === null) return true;
        const node = cursor.currentNode;
        const name = node.childForFieldName('name');
        if (name) out.add('method', qualify(scope, name.text), firstDecorator(node), node);
        return false;
      }
      case 'public_field_definition':
      case 'field_definition': {
        // `handle = () => {}` in a class body is a method in all but syntax.
        if (scope === null) return true;
        const node = cursor.currentNode;
        const name = node.childForFieldName('name') ?? node.childForFieldName('property');
        const value = node.childForFieldName('value');
        if (!name || !value) return true;
        if (functionValues.has(value.type)) {
          out.add('method', qualify(scope, name.text), firstDecorator(node), node);
          return false;
        }
        if (value.type === 'class') {
          addClass(qualify(scope, name.text), value, firstDecorator(node), node);
          return false;
        }
        return true;
      }
      default:
        // An anonymous function inside a class body (a callback in a field
        // initialiser) leaves the class: what it declares is not a method.
        if (scope !== null && anonymousScopes.has(cursor.nodeType)) {
          collectScript(cursor.currentNode, null, out);
          return false;
        }
        return true;
    }
  });
}

// ---- Python ------------------------------------------------------------------

function collectPython(root: Parser.SyntaxNode, scope: string | null, out: ChunkCollector): void {
  /** `outer` is the decorated_definition when there is one, so the chunk covers the decorators. */
  const addDefinition = (definition: Parser.SyntaxNode, outer: Parser.SyntaxNode): void => {
    const name = definition.childForFieldName('name');
    if (!name) return;
    const symbol = qualify(scope, name.text);
    if (definition.type === 'class_definition') {
      out.add('class', symbol, outer);
      const body = definition.childForFieldName('body');
      if (body) collectPython(body, symbol, out);
    } else {
      out.add(scope === null ? 'function' : 'method', symbol, outer);
    }
  };

  walkDescendants(root, (cursor) => {
    switch (cursor.nodeType) {
      case 'function_definition':
      case 'class_definition':
        addDefinition(cursor.currentNode, cursor.currentNode);
        return false;
      case 'decorated_definition': {
        const node = cursor.currentNode;
        const definition = node.childForFieldName('definition');
        if (definition) addDefinition(definition, node);
        return false;
      }
      default:
        return true;
    }
  });
}
