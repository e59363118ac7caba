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
 * - classes nested in classes down to MAX_CLASS_DEPTH levels; a class deeper
 *   than that belongs to the chunk of the class that holds it, methods and
 *   all, as a nested helper belongs to its function. Each level's chunk
 *   repeats everything inside it, so unbounded nesting made the output grow
 *   with the square of the input (160 nested classes: 83 times the input);
 *   with the bound the output stays within a few times the input, and the
 *   walk's recursion is bounded too;
 * - its content is the definition's source text, from its first decorator (or
 *   `export`) to its end, with trailing whitespace dropped; the line range is
 *   exactly the lines of that text.
 *
 * Indices from tree-sitter's node binding are UTF-16 offsets into the JS
 * string (it parses as UTF-16LE), so `content` is a plain `slice`.
 *
 * Speed: every node the binding hands to JS costs a native call or several,
 * and in a big file that adds up to a large share of the parse itself. So the
 * walk reads types, fields and offsets through one TreeCursor, materialises a
 * node only to walk a class body, does not descend where no definition can
 * be, and counts lines itself instead of asking for positions.
 */
import { hash } from 'node:crypto';
import Parser from 'tree-sitter';
import JavaScript from 'tree-sitter-javascript';
import Python from 'tree-sitter-python';
import TypeScript from 'tree-sitter-typescript';
import { languageOf, type CodeChunk, type CodeChunkResult, type CodeLanguage, type SourceFile } from '../../shared/index.ts';

export type ChunkKind = CodeChunk['kind'];

/** How many levels of classes get chunks of their own: a top-level class is level 1. */
export const MAX_CLASS_DEPTH = 3;

/** The chunks of one file. `CodeChunkResult.files` holds the same without the chunks themselves. */
export interface FileChunks {
  path: string;
  /** Null when neither `language` nor the extension named a supported language. */
  language: CodeLanguage | null;
  chunks: CodeChunk[];
  /** Why this file produced nothing. A per-file error never fails the other files of the job. */
  error?: string;
}

/** The extension of the last path segment, lower-cased, with its dot; '' when there is none (for the refusal's message). */
function extensionOf(path: string): string {
  const name = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot).toLowerCase() : '';
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

export function parserFor(language: CodeLanguage): Parser {
  let parser = parsers.get(language);
  if (!parser) {
    parser = new Parser();
    parser.setLanguage(grammars[language]);
    parsers.set(language, parser);
  }
  return parser;
}

/**
 * The text the languages' own tools read: without a leading UTF-8 byte
 * order mark (Python decodes source bytes with it stripped, and TypeScript's
 * `sys.readFile` drops it), and with each lone CR as LF. A lone CR ends a
 * line for Python's tokenizer and the TypeScript compiler alike, but
 * tree-sitter's grammars read it as a space: a Python `# comment` then ran
 * on over the next definition. The swap keeps every offset (one character
 * for one) and means the same in both languages (a raw CR cannot sit in a
 * JavaScript string, and a template literal reads it as LF).
 */
export function sourceText(content: string): string {
  const text = content.charCodeAt(0) === 0xfeff ? content.slice(1) : content;
  return text.includes('\r') ? text.replace(/\r(?!\n)/g, '\n') : text;
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
  const text = sourceText(file.content);
  let tree: Parser.Tree;
  try {
    // tree-sitter 0.22 reads a string through its own 32 KB-buffered callback,
    // so inputs of any size parse in one call (0.21 threw at 32 KB).
    tree = parser.parse(text);
  } catch (err) {
    parser.reset();
    return { path: file.path, language, chunks: [], error: `tree-sitter could not parse the file: ${err instanceof Error ? err.message : String(err)}` };
  }
  const out = new ChunkCollector(file.path, language, text);
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

  /**
   * Text of the child in `field` of the node under the cursor, or null. Reads
   * through the cursor, which ends where it started: materialising a node
   * costs a native cache entry and a GC finalizer.
   */
  fieldText(cursor: Parser.TreeCursor, field: string): string | null {
    if (!cursor.gotoFirstChild()) return null;
    let text: string | null = null;
    do {
      if (cursor.currentFieldName === field) {
        text = this.source.slice(cursor.startIndex, cursor.endIndex);
        break;
      }
    } while (cursor.gotoNextSibling());
    cursor.gotoParent();
    return text;
  }

  /**
   * The `name` (or `property`) and `value` children of the node under the
   * cursor, for declarators and class fields, in one pass; the cursor ends
   * where it started.
   */
  nameAndValue(cursor: Parser.TreeCursor): { name: string; nameType: string; valueType: string } | null {
    if (!cursor.gotoFirstChild()) return null;
    let name: string | null = null;
    let nameType = '';
    let valueType: string | null = null;
    do {
      const field = cursor.currentFieldName;
      if (field === 'name' || field === 'property') {
        name = this.source.slice(cursor.startIndex, cursor.endIndex);
        nameType = cursor.nodeType;
      } else if (field === 'value') {
        valueType = cursor.nodeType;
        break;
      }
    } while (cursor.gotoNextSibling());
    cursor.gotoParent();
    return name !== null && valueType !== null ? { name, nameType, valueType } : null;
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
    const starts = (this.lineStarts ??= lineStartsOf(this.source, this.language));
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

/** Where each line starts, with the language's own line breaks: LF (CRLF ends at its LF) for Python; also U+2028 and U+2029 for TypeScript and JavaScript, as the compiler counts them. */
function lineStartsOf(source: string, language: CodeLanguage): number[] {
  const starts = [0];
  for (const m of source.matchAll(language === 'python' ? /\n/g : /[\n\u2028\u2029]/g)) starts.push(m.index + 1);
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

/**
 * Moves the cursor onto the current node's only named child. When there is
 * not exactly one, leaves the cursor where it was and returns false.
 */
function gotoOnlyNamedChild(cursor: Parser.TreeCursor): boolean {
  if (!cursor.gotoFirstChild()) return false;
  let named = 0;
  do if (cursor.nodeIsNamed) named++;
  while (cursor.gotoNextSibling());
  cursor.gotoParent();
  if (named !== 1) return false;
  cursor.gotoFirstChild();
  while (!cursor.nodeIsNamed) cursor.gotoNextSibling();
  return true;
}

// ---- TypeScript, TSX, JavaScript -------------------------------------------

/** Values that make `const name = <value>` a function. */
export const functionValues = new Set(['arrow_function', 'function_expression', 'function', 'generator_function']);
/** Nodes that open a function scope without naming a chunk themselves. */
export const anonymousScopes = new Set([...functionValues, 'class']);
/**
 * Nodes the walk does not enter: no definition can sit inside them (or only
 * inside a function in a default value or a template literal, which is not
 * worth the walk through every import and type).
 */
export const scriptOpaque = new Set([
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
  'function_signature',
  'method_signature',
  'abstract_method_signature',
  'property_signature',
]);
/** Declarations that hold types only: no chunk comes from inside them (the code extractor enters them for symbols). */
const typeOnlyDeclarations = ['interface_declaration', 'type_alias_declaration', 'enum_declaration'];
const scriptOpaqueForChunks = new Set([...scriptOpaque, ...typeOnlyDeclarations]);

/**
 * `scope` is the qualified name of the class whose body is being walked, or null; `classDepth` how
 * many classes enclose `root`.
 */
function collectScript(root: Parser.SyntaxNode, scope: string | null, out: ChunkCollector, classDepth = 0): void {
  const addClass = (symbol: string, classNode: Parser.SyntaxNode, start: number, end: number): void => {
    // Deeper than the bound: part of the enclosing class's chunk, not a chunk (or a walk) of its own.
    if (classDepth >= MAX_CLASS_DEPTH) return;
    out.add('class', symbol, start, end);
    const body = classNode.childForFieldName('body');
    if (body) collectScript(body, symbol, out, classDepth + 1);
  };
  /**
   * `const f = () => {}` and `const C = class {}`, the cursor on the
   * declarator; false when the value is something else.
   */
  const addDeclarator = (cursor: Parser.TreeCursor, start: number, end: number): boolean => {
    const d = out.nameAndValue(cursor);
    if (!d || d.nameType !== 'identifier') return false;
    if (functionValues.has(d.valueType)) out.add('function', d.name, start, end);
    else if (d.valueType === 'class') addClass(d.name, cursor.currentNode.childForFieldName('value')!, start, end);
    else return false;
    return true;
  };

  // The export statement whose children are being visited: a declaration
  // directly in it starts at its `export` (and at a TS class's decorators).
  let exportStart = -1;
  let exportDepth = -1;
  // TypeScript puts a member's decorators before it in the class body, as
  // siblings: the start of the run of decorators before the next member.
  let decoratorsStart = -1;

  // Per visit: whether the node is directly in an export statement, and where
  // its decorators start. Offsets are read only for definitions: each read is
  // a native call.
  let inExport = false;
  let decorated = -1;
  const declarationStart = (cursor: Parser.TreeCursor): number => (inExport ? exportStart : cursor.startIndex);
  const memberStart = (cursor: Parser.TreeCursor): number => (decorated >= 0 ? decorated : cursor.startIndex);

  walkNamed(root, (cursor, depth) => {
    const type = cursor.nodeType;
    if (exportDepth >= depth) exportDepth = -1;
    inExport = exportDepth === depth - 1;
    decorated = -1;
    if (scope !== null && depth === 1) {
      if (type === 'decorator') {
        if (decoratorsStart < 0) decoratorsStart = cursor.startIndex;
        return false;
      }
      decorated = decoratorsStart;
      decoratorsStart = -1;
    }

    switch (type) {
      case 'export_statement':
        exportStart = cursor.startIndex;
        exportDepth = depth;
        return true;
      case 'function_declaration':
      case 'generator_function_declaration': {
        const name = out.fieldText(cursor, 'name');
        if (name !== null) out.add('function', name, declarationStart(cursor), cursor.endIndex);
        // The body belongs to the chunk, nested functions included.
        return false;
      }
      case 'class_declaration':
      case 'abstract_class_declaration': {
        const name = out.fieldText(cursor, 'name');
        if (name === null) return true;
        addClass(qualify(scope, name), cursor.currentNode, declarationStart(cursor), cursor.endIndex);
        return false;
      }
      case 'lexical_declaration':
      case 'variable_declaration': {
        // One declarator: the chunk is the whole statement. Several: each
        // declarator is its own chunk, found when the walk goes in.
        const start = declarationStart(cursor);
        const end = cursor.endIndex;
        if (!gotoOnlyNamedChild(cursor)) return true;
        const added = addDeclarator(cursor, start, end);
        cursor.gotoParent();
        return !added;
      }
      case 'variable_declarator':
        return !addDeclarator(cursor, declarationStart(cursor), cursor.endIndex);
      case 'method_definition': {
        // Outside a class this is an object literal's method: an anonymous scope.
        if (scope === null) return true;
        const name = out.fieldText(cursor, 'name');
        if (name !== null) out.add('method', qualify(scope, name), memberStart(cursor), cursor.endIndex);
        return false;
      }
      case 'public_field_definition':
      case 'field_definition': {
        // `handle = () => {}` in a class body is a method in all but syntax.
        if (scope === null) return true;
        const field = out.nameAndValue(cursor);
        if (!field) return true;
        const symbol = qualify(scope, field.name);
        if (functionValues.has(field.valueType)) out.add('method', symbol, memberStart(cursor), cursor.endIndex);
        else if (field.valueType === 'class') addClass(symbol, cursor.currentNode.childForFieldName('value')!, memberStart(cursor), cursor.endIndex);
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
            collectScript(cursor.currentNode, null, out, classDepth);
            return false;
          }
        }
        return !scriptOpaqueForChunks.has(type);
    }
  });
}

// ---- Python ------------------------------------------------------------------

/** The only nodes a `def` or `class` can sit in, below the module: statements that hold blocks. */
export const pythonContainers = new Set([
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

function collectPython(root: Parser.SyntaxNode, scope: string | null, out: ChunkCollector, classDepth = 0): void {
  // `start` is the decorated_definition's when there is one, so the chunk covers the decorators.
  const addClass = (cursor: Parser.TreeCursor, start: number, end: number): void => {
    if (classDepth >= MAX_CLASS_DEPTH) return;
    const name = out.fieldText(cursor, 'name');
    if (name === null) return;
    const symbol = qualify(scope, name);
    out.add('class', symbol, start, end);
    const body = cursor.currentNode.childForFieldName('body');
    if (body) collectPython(body, symbol, out, classDepth + 1);
  };

  const addFunction = (cursor: Parser.TreeCursor, start: number, end: number): void => {
    const name = out.fieldText(cursor, 'name');
    if (name !== null) out.add(scope === null ? 'function' : 'method', qualify(scope, name), start, end);
  };

  walkNamed(root, (cursor) => {
    const type = cursor.nodeType;
    switch (type) {
      case 'function_definition':
        addFunction(cursor, cursor.startIndex, cursor.endIndex);
        return false;
      case 'class_definition':
        addClass(cursor, cursor.startIndex, cursor.endIndex);
        return false;
      case 'decorated_definition': {
        const start = cursor.startIndex;
        const end = cursor.endIndex;
        // Down to the `definition` child, and back up after.
        if (!cursor.gotoFirstChild()) return false;
        while (cursor.currentFieldName !== 'definition' && cursor.gotoNextSibling());
        if (cursor.nodeType === 'function_definition') addFunction(cursor, start, end);
        else if (cursor.nodeType === 'class_definition') addClass(cursor, start, end);
        cursor.gotoParent();
        return false;
      }
      default:
        return pythonContainers.has(type);
    }
  });
}
