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
 *
 * Speed: every node the binding hands to JS costs a native call or several,
 * and in a big file that adds up to a large share of the parse itself. So the
 * walk reads types and offsets from one TreeCursor, materialises a node only
 * for a definition, does not descend where no definition can be, and counts
 * lines itself instead of asking for positions.
 */
import { hash } from 'node:crypto';
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
  /** Offsets where lines start, built on the first chunk. */
  private lineStarts: number[] | undefined;

  constructor(
    private readonly path: string,
    private readonly language: CodeLanguage,
    private readonly source: string,
  ) {}

  text(node: Parser.SyntaxNode): string {
    return this.source.slice(node.startIndex, node.endIndex);
  }

  /** A chunk of the source from `start` to `end`, trailing whitespace dropped. */
  add(kind: ChunkKind, symbol: string, start: number, end: number): void {
    const content = this.source.slice(start, end).trimEnd();
    this.chunks.push({
      path: this.path,
      language: this.language,
      kind,
      symbol,
      startLine: this.lineAt(start),
      endLine: this.lineAt(start + Math.max(content.length - 1, 0)),
      contentHash: hash('sha256', content, 'hex'),
      content,
    });
  }

  /** 1-based line of the character at `index`. */
  private lineAt(index: number): number {
    const starts = (this.lineStarts ??= lineStartsOf(this.source));
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }
}

function lineStartsOf(source: string): number[] {
  const starts = [0];
  for (let i = source.indexOf('\n'); i !== -1; i = source.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

function qualify(scope: string | null, name: string): string {
  return scope === null ? name : `${scope}.${name}`;
}

/**
 * Pre-order walk over `root`'s named descendants (depth 1 = its children).
 * `enter` returns whether to descend into the node under the cursor.
 * Iterative, because expression trees (a long `a + b + ...`) nest deeper than
 * the JS stack allows.
 */
function walkNamed(root: Parser.SyntaxNode, enter: (cursor: Parser.TreeCursor, depth: number) => boolean): void {
  const cursor = root.walk();
  if (!cursor.gotoFirstChild()) return;
  let depth = 1;
  for (;;) {
    if (cursor.nodeIsNamed && enter(cursor, depth) && cursor.gotoFirstChild()) {
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
/**
 * Nodes the walk does not enter: no definition can sit inside them (or only
 * inside a function in a default value or a template literal, which is not
 * worth the walk through every import and type).
 */
const scriptOpaque = new Set([
  'comment',
  'string',
  'template_string',
  'regex',
  'number',
  'identifier',
  'property_identifier',
  'import_statement',
  'formal_parameters',
  'type_annotation',
  'type_arguments',
  'type_parameters',
  'interface_declaration',
  'type_alias_declaration',
  'enum_declaration',
  'function_signature',
  'method_signature',
  'abstract_method_signature',
  'property_signature',
]);

/** `scope` is the qualified name of the class whose body is being walked, or null. */
function collectScript(root: Parser.SyntaxNode, scope: string | null, out: ChunkCollector): void {
  const addClass = (symbol: string, classNode: Parser.SyntaxNode, start: number, end: number): void => {
    out.add('class', symbol, start, end);
    const body = classNode.childForFieldName('body');
    if (body) collectScript(body, symbol, out);
  };
  /** `const f = () => {}` and `const C = class {}`; false when the value is something else. */
  const addDeclarator = (declarator: Parser.SyntaxNode, start: number, end: number): boolean => {
    const value = declarator.childForFieldName('value');
    if (!value) return false;
    const valueType = value.type;
    if (!functionValues.has(valueType) && valueType !== 'class') return false;
    const name = declarator.childForFieldName('name');
    if (name?.type !== 'identifier') return false;
    if (valueType === 'class') addClass(out.text(name), value, start, end);
    else out.add('function', out.text(name), start, end);
    return true;
  };

  // The export statement whose children are being visited: a declaration
  // directly in it starts at its `export` (and at a TS class's decorators).
  let exportStart = -1;
  let exportDepth = -1;
  // TypeScript puts a member's decorators before it in the class body, as
  // siblings: the start of the run of decorators before the next member.
  let decoratorsStart = -1;

  walkNamed(root, (cursor, depth) => {
    const type = cursor.nodeType;
    if (exportDepth >= depth) exportDepth = -1;
    const inExport = exportDepth === depth - 1;
    // Offsets are read only for definitions: each read is a native call.
    const startOf = (): number => (inExport ? exportStart : cursor.startIndex);
    let decorated = -1;
    if (scope !== null && depth === 1) {
      if (type === 'decorator') {
        if (decoratorsStart < 0) decoratorsStart = cursor.startIndex;
        return false;
      }
      decorated = decoratorsStart;
      decoratorsStart = -1;
    }
    const memberStartOf = (): number => (decorated >= 0 ? decorated : cursor.startIndex);

    switch (type) {
      case 'export_statement':
        exportStart = startOf();
        exportDepth = depth;
        return true;
      case 'function_declaration':
      case 'generator_function_declaration': {
        const name = cursor.currentNode.childForFieldName('name');
        if (name) out.add('function', out.text(name), startOf(), cursor.endIndex);
        // The body belongs to the chunk, nested functions included.
        return false;
      }
      case 'class_declaration':
      case 'abstract_class_declaration': {
        const node = cursor.currentNode;
        const name = node.childForFieldName('name');
        if (!name) return true;
        addClass(qualify(scope, out.text(name)), node, startOf(), cursor.endIndex);
        return false;
      }
      case 'lexical_declaration':
      case 'variable_declaration': {
        // One declarator: the chunk is the whole statement. Several: each
        // declarator is its own chunk, found when the walk goes in.
        const declarators = cursor.currentNode.namedChildren;
        return declarators.length !== 1 || !addDeclarator(declarators[0]!, startOf(), cursor.endIndex);
      }
      case 'variable_declarator':
        return !addDeclarator(cursor.currentNode, startOf(), cursor.endIndex);
      case 'method_definition': {
        // Outside a class this is an object literal's method: an anonymous scope.
        if (scope === null) return true;
        const name = cursor.currentNode.childForFieldName('name');
        if (name) out.add('method', qualify(scope, out.text(name)), memberStartOf(), cursor.endIndex);
        return false;
      }
      case 'public_field_definition':
      case 'field_definition': {
        // `handle = () => {}` in a class body is a method in all but syntax.
        if (scope === null) return true;
        const node = cursor.currentNode;
        const value = node.childForFieldName('value');
        const name = node.childForFieldName('name') ?? node.childForFieldName('property');
        if (!value || !name) return true;
        const valueType = value.type;
        if (functionValues.has(valueType)) out.add('method', qualify(scope, out.text(name)), memberStartOf(), cursor.endIndex);
        else if (valueType === 'class') addClass(qualify(scope, out.text(name)), value, memberStartOf(), cursor.endIndex);
        else return true;
        return false;
      }
      default:
        if (anonymousScopes.has(type)) {
          // `export default function () {}` and `export default class {}`.
          if (inExport) {
            const node = cursor.currentNode;
            const name = node.childForFieldName('name');
            const symbol = name ? out.text(name) : 'default';
            if (type === 'class') addClass(symbol, node, exportStart, cursor.endIndex);
            else out.add('function', symbol, exportStart, cursor.endIndex);
            return false;
          }
          // An anonymous function inside a class body (a callback in a field
          // initialiser) leaves the class: what it declares is not a method.
          if (scope !== null) {
            collectScript(cursor.currentNode, null, out);
            return false;
          }
        }
        return !scriptOpaque.has(type);
    }
  });
}

// ---- Python ------------------------------------------------------------------

/** The only nodes a `def` or `class` can sit in, below the module: statements that hold blocks. */
const pythonContainers = new Set([
  'block',
  'if_statement',
  'elif_clause',
  'else_clause',
  'for_statement',
  'while_statement',
  'try_statement',
  'except_clause',
  'except_group_clause',
  'finally_clause',
  'with_statement',
  'match_statement',
  'case_clause',
]);

function collectPython(root: Parser.SyntaxNode, scope: string | null, out: ChunkCollector): void {
  /** `start` is the decorated_definition's when there is one, so the chunk covers the decorators. */
  const addDefinition = (definition: Parser.SyntaxNode, isClass: boolean, start: number, end: number): void => {
    const name = definition.childForFieldName('name');
    if (!name) return;
    const symbol = qualify(scope, out.text(name));
    if (isClass) {
      out.add('class', symbol, start, end);
      const body = definition.childForFieldName('body');
      if (body) collectPython(body, symbol, out);
    } else {
      out.add(scope === null ? 'function' : 'method', symbol, start, end);
    }
  };

  walkNamed(root, (cursor) => {
    const type = cursor.nodeType;
    switch (type) {
      case 'function_definition':
      case 'class_definition':
        addDefinition(cursor.currentNode, type === 'class_definition', cursor.startIndex, cursor.endIndex);
        return false;
      case 'decorated_definition': {
        const definition = cursor.currentNode.childForFieldName('definition');
        if (definition) addDefinition(definition, definition.type === 'class_definition', cursor.startIndex, cursor.endIndex);
        return false;
      }
      default:
        return pythonContainers.has(type);
    }
  });
}
