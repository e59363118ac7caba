/**
 * Metadata extraction against ground truth from the languages' own parsers,
 * on real libraries at pinned versions (bench/codebench/libraries.ts):
 * Python's `ast` for more-itertools, the TypeScript compiler API for rxjs'
 * sources and lodash. Definitions are compared as (path, qualified name,
 * kind, line); precision and recall must reach 0.98. The definition rule is
 * docs/chunking.md's: named functions, classes and methods not inside a
 * function, plus interfaces, type aliases and enums in TypeScript.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libraries, librarySources } from '../../bench/codebench/libraries.ts';
import { extractSource, type ExtractedFile } from '../../workers/code/extract.ts';

const tokenizer = { kind: 'estimate' as const, charsPerToken: 3 };
const extract = (files: { path: string; content: string }[]) => files.map((f) => extractSource(f, { maxTokens: 254, tokenizer }));

interface Def {
  path: string;
  name: string;
  kind: string;
  line: number;
  /** The last line (the compiler API's truth only). */
  endLine?: number;
}

/** Multiset keys: a name defined twice (a getter and its setter) counts twice. */
function keys(defs: Def[]): string[] {
  const seen = new Map<string, number>();
  return defs.map((d) => {
    const k = `${d.path}|${d.name}|${d.kind}|${d.line}`;
    const n = seen.get(k) ?? 0;
    seen.set(k, n + 1);
    return `${k}#${n}`;
  });
}

function score(ours: Def[], truth: Def[]) {
  const o = new Set(keys(ours));
  const t = new Set(keys(truth));
  const both = [...o].filter((k) => t.has(k)).length;
  return {
    precision: both / o.size,
    recall: both / t.size,
    n: t.size,
    missing: [...t].filter((k) => !o.has(k)).slice(0, 10),
    extra: [...o].filter((k) => !t.has(k)).slice(0, 10),
  };
}

const oursOf = (extracted: ExtractedFile[]): Def[] =>
  extracted.flatMap((f) => f.symbols.map((s) => ({ path: f.path, name: s.qualifiedName, kind: s.kind, line: s.startLine })));

/**
 * Ground truth from Python's `ast`, reading each file's bytes as Python reads source (a UTF-8 BOM
 * dropped; CR, LF and CRLF each end a line): module and class bodies and the blocks of compound
 * statements, never function bodies. Paths are reported from the "/lib/" folder down.
 */
const astScript = `
import ast, json, sys
out = {"defs": [], "imports": {}}
for path in sys.argv[1:]:
    rel = path.split("/lib/", 1)[1]
    tree = ast.parse(open(path, "rb").read())
    mods = []
    def visit(stmts, scope):
        for n in stmts:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = n.name if scope is None else scope + "." + n.name
                kind = "class" if isinstance(n, ast.ClassDef) else ("function" if scope is None else "method")
                out["defs"].append({"path": rel, "name": q, "kind": kind, "line": n.lineno, "col": n.col_offset, "end": n.end_lineno, "endCol": n.end_col_offset, "doc": ast.get_docstring(n, clean=True)})
                if isinstance(n, ast.ClassDef):
                    visit(n.body, q)
            elif isinstance(n, (ast.Import, ast.ImportFrom)) and scope is None:
                if isinstance(n, ast.Import):
                    mods.extend(a.name for a in n.names)
                else:
                    mods.append("." * n.level + (n.module or ""))
            else:
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(n, field, []) or [], scope)
                for h in getattr(n, "handlers", []) or []:
                    visit(h.body, scope)
                for c in getattr(n, "cases", []) or []:
                    visit(c.body, scope)
    visit(tree.body, None)
    out["imports"][rel] = sorted(set(mods))
print(json.dumps(out))
`;

function astTruth(
  dir: string,
  paths: string[],
): { defs: (Def & { col: number; end: number; endCol: number; doc: string | null })[]; imports: Record<string, string[]> } {
  return JSON.parse(execFileSync('python3', ['-c', astScript, ...paths], { cwd: dir, maxBuffer: 64 * 1024 * 1024 }).toString());
}

describe('Python, against ast (more-itertools 10.5.0)', () => {
  let dir: string;
  let truth: ReturnType<typeof astTruth>;
  let ours: ExtractedFile[];

  beforeAll(async () => {
    const sources = librarySources(libraries.moreItertools);
    ours = extract(sources);
    dir = await mkdtemp(join(tmpdir(), 'parley-ast-'));
    const libDir = join(dir, 'lib');
    const paths: string[] = [];
    for (const s of sources) {
      const p = join(libDir, s.path);
      await import('node:fs/promises').then((fs) => fs.mkdir(join(p, '..'), { recursive: true }).then(() => fs.writeFile(p, s.content)));
      paths.push(p);
    }
    truth = astTruth(dir, paths);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('finds the definitions ast finds, with precision and recall of at least 0.98', () => {
    const s = score(oursOf(ours), truth.defs);
    console.log(`python definitions: ${s.n}, precision ${s.precision.toFixed(4)}, recall ${s.recall.toFixed(4)}`, s.missing, s.extra);
    expect(s.n).toBeGreaterThan(150);
    expect(s.precision).toBeGreaterThanOrEqual(0.98);
    expect(s.recall).toBeGreaterThanOrEqual(0.98);
  });

  it('agrees with ast on spans and docstrings', () => {
    const byKey = new Map(truth.defs.map((d) => [`${d.path}|${d.name}|${d.line}`, d]));
    let spans = 0;
    let docs = 0;
    let n = 0;
    for (const f of ours) {
      for (const s of f.symbols) {
        const t = byKey.get(`${f.path}|${s.qualifiedName}|${s.startLine}`);
        if (!t) continue;
        n++;
        if (t.end === s.endLine) spans++;
        if ((t.doc ?? null) === s.docstring) docs++;
      }
    }
    console.log(`python spans ${spans}/${n}, docstrings ${docs}/${n}`);
    expect(spans / n).toBeGreaterThanOrEqual(0.98);
    expect(docs / n).toBeGreaterThanOrEqual(0.98);
  });

  it('records the modules each file imports', () => {
    for (const f of ours) {
      const mods = [...new Set(f.imports.map((i) => i.module))].sort();
      expect(mods, f.path).toEqual(truth.imports[f.path]);
    }
  });

  it('gives methods their class as parent and signatures as written', () => {
    const all = ours.flatMap((f) => f.symbols);
    const peek = all.find((s) => s.qualifiedName === 'peekable.peek')!;
    expect(peek).toMatchObject({ kind: 'method', parent: 'peekable', name: 'peek' });
    expect(peek.signature).toBe('def peek(self, default=_marker)');
    expect(all.find((s) => s.qualifiedName === 'chunked')!.signature).toBe('def chunked(iterable, n, strict=False)');
  });
});

/** Ground truth for TypeScript and JavaScript from the compiler API, by the definition rule above. */
function tsTruth(path: string, content: string): Def[] {
  const sf = ts.createSourceFile(path, content, ts.ScriptTarget.Latest, true, path.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS);
  const out: Def[] = [];
  // Where a definition starts, its decorators excluded, as ast's lineno (named ones are compared at their name).
  const ownStart = (n: ts.Node) => {
    const decorators = ts.canHaveDecorators(n) ? ts.getDecorators(n) : undefined;
    if (!decorators?.length) return n.getStart(sf);
    const tokens = n.getChildren(sf).flatMap((c) => (c.kind === ts.SyntaxKind.SyntaxList ? c.getChildren(sf) : [c]));
    return (tokens.find((c) => !ts.isDecorator(c)) ?? n).getStart(sf);
  };
  const line = (n: ts.Node) => sf.getLineAndCharacterOfPosition(ownStart(n)).line + 1;
  const nameLine = (n: ts.Node & { name?: ts.Node }) => (n.name ? line(n.name) : line(n));
  const q = (scope: string | null, name: string) => (scope ? `${scope}.${name}` : name);
  const isFn = (e: ts.Node | undefined) => !!e && (ts.isArrowFunction(e) || ts.isFunctionExpression(e));
  const add = (name: string, kind: string, l: number, n: ts.Node) =>
    out.push({ path, name, kind, line: l, endLine: sf.getLineAndCharacterOfPosition(n.getEnd()).line + 1 });
  const classBody = (c: ts.ClassLikeDeclaration, scope: string) => {
    for (const m of c.members) {
      if ((ts.isMethodDeclaration(m) || ts.isGetAccessor(m) || ts.isSetAccessor(m)) && m.body && m.name)
        add(q(scope, m.name.getText(sf)), 'method', nameLine(m), m);
      else if (ts.isConstructorDeclaration(m) && m.body)
        add(q(scope, 'constructor'), 'method', line(m.getChildren(sf).find((c) => c.kind === ts.SyntaxKind.ConstructorKeyword) ?? m), m);
      else if (ts.isPropertyDeclaration(m) && m.name && m.initializer && isFn(m.initializer)) add(q(scope, m.name.getText(sf)), 'method', nameLine(m), m);
      else if (ts.isPropertyDeclaration(m) && m.name && m.initializer && ts.isClassExpression(m.initializer)) {
        add(q(scope, m.name.getText(sf)), 'class', nameLine(m), m);
        classBody(m.initializer, q(scope, m.name.getText(sf)));
      } else ts.forEachChild(m, (c) => visit(c, null));
    }
  };
  function visit(node: ts.Node, scope: string | null): void {
    if (ts.isFunctionDeclaration(node)) {
      if (node.body) add(q(scope, node.name ? node.name.text : 'default'), 'function', node.name ? nameLine(node) : line(node), node);
      return;
    }
    if (ts.isClassDeclaration(node)) {
      const name = node.name ? node.name.text : 'default';
      add(q(scope, name), 'class', node.name ? nameLine(node) : line(node), node);
      classBody(node, q(scope, name));
      return;
    }
    if (ts.isInterfaceDeclaration(node)) return void add(q(scope, node.name.text), 'interface', nameLine(node), node);
    if (ts.isTypeAliasDeclaration(node)) return void add(q(scope, node.name.text), 'type', nameLine(node), node);
    if (ts.isEnumDeclaration(node)) return void add(q(scope, node.name.text), 'enum', nameLine(node), node);
    if (ts.isVariableStatement(node)) {
      const decls = node.declarationList.declarations;
      for (const d of decls) {
        if (ts.isIdentifier(d.name) && d.initializer && isFn(d.initializer))
          add(q(scope, d.name.text), 'function', decls.length === 1 ? line(node) : line(d), decls.length === 1 ? node : d);
        else if (ts.isIdentifier(d.name) && d.initializer && ts.isClassExpression(d.initializer)) {
          add(q(scope, d.name.text), 'class', decls.length === 1 ? line(node) : line(d), decls.length === 1 ? node : d);
          classBody(d.initializer, q(scope, d.name.text));
        } else if (d.initializer) visit(d.initializer, scope);
      }
      return;
    }
    if (ts.isExportAssignment(node) && (isFn(node.expression) || ts.isClassExpression(node.expression))) {
      const e = node.expression as ts.FunctionExpression | ts.ClassExpression;
      const name = e.name ? e.name.text : 'default';
      if (ts.isClassExpression(e)) {
        add(name, 'class', line(node), node);
        classBody(e, name);
      } else add(name, 'function', line(node), node);
      return;
    }
    if (ts.isClassExpression(node)) {
      // An anonymous class in an expression: its members are not definitions, what they hold may be.
      for (const m of node.members) ts.forEachChild(m, (c) => visit(c, null));
      return;
    }
    ts.forEachChild(node, (c) => visit(c, scope));
  }
  ts.forEachChild(sf, (n) => visit(n, null));
  return out;
}

describe('TypeScript and JavaScript, against the TypeScript compiler API', () => {
  for (const lib of [libraries.rxjs, libraries.lodash]) {
    it(`finds the definitions of ${lib.name} ${lib.version} with precision and recall of at least 0.98`, () => {
      const sources = librarySources(lib);
      const truth = sources.flatMap((s) => tsTruth(s.path, s.content));
      const s = score(oursOf(extract(sources)), truth);
      console.log(`${lib.name} definitions: ${s.n}, precision ${s.precision.toFixed(4)}, recall ${s.recall.toFixed(4)}`, s.missing, s.extra);
      expect(s.n).toBeGreaterThan(300);
      expect(s.precision).toBeGreaterThanOrEqual(0.98);
      expect(s.recall).toBeGreaterThanOrEqual(0.98);
    });
  }

  it('records imports, parents, signatures and JSDoc', () => {
    const [file] = extract([
      {
        path: 'src/x.ts',
        content: [
          "import { a, b as c } from './mod';",
          "import * as ns from 'lib';",
          "const fs = require('fs');",
          '/** Greets people. */',
          'export class Greeter<T> extends Base implements Named {',
          '  /** Says hello to `name`. */',
          '  async greet(name: string): Promise<string> {',
          '    return name;',
          '  }',
          '}',
        ].join('\n'),
      },
    ]);
    expect(file!.imports).toEqual([
      { module: './mod', names: ['a', 'b as c'] },
      { module: 'lib', names: ['* as ns'] },
      { module: 'fs', names: ['fs'] },
    ]);
    const greet = file!.symbols.find((s) => s.name === 'greet')!;
    expect(greet).toMatchObject({
      qualifiedName: 'Greeter.greet',
      parent: 'Greeter',
      kind: 'method',
      signature: 'async greet(name: string): Promise<string>',
      docstring: 'Says hello to `name`.',
      startLine: 7,
      endLine: 9,
    });
    expect(file!.symbols.find((s) => s.name === 'Greeter')).toMatchObject({
      signature: 'export class Greeter<T> extends Base implements Named',
      docstring: 'Greets people.',
      startLine: 5,
    });
  });
});

/**
 * Files the libraries do not have: decorators, a byte order mark, and every
 * line break the tools know (lone CR, CRLF, and in TypeScript and
 * JavaScript U+2028 and U+2029), each read as its tool reads a file.
 */
describe('line breaks, byte order marks and decorators, against ast and the compiler API', () => {
  const python: Record<string, string> = {
    'decorated.py': [
      '@dec',
      '@dec2(',
      '    1,',
      ')',
      '# between',
      'def f(x):',
      '    return x',
      '',
      'if True:',
      '    @dataclass',
      '    class C:',
      '        @property',
      '        # comment',
      '        async def p(self):',
      '            return 1',
      '',
      '        @p.setter',
      '        def p(self, v): pass',
      '',
    ].join('\n'),
    'bom.py': '\ufeff@dec\ndef f(x):\n    """Doc."""\n    return x\n\n\nclass C:\n    def m(self):\n        return "é"\n',
    'cr.py': 'import os\r# a comment ends at a lone CR\rdef f(x):\r    return x\r\r\r@dec\rclass C:\r    """Doc."""\r\r    def m(self):\r        pass\r',
    'mixed.py': 'x = 1\r\n\rdef f(x):\n    return x\r\n\n# U+2028 is no line break for Python: a\u2028b\ndef g(): pass\n',
  };
  const scripts: Record<string, string> = {
    'decorated.ts': [
      '@Component({',
      '  selector: "x",',
      '})',
      'export class A {',
      '  @Input()',
      '  x = () => 1;',
      '  @HostListener("click")',
      '  /** Handles clicks. */',
      '  onClick(e: Event) {',
      '    return e;',
      '  }',
      '  @Log static async *gen() {}',
      '}',
      '@Dec',
      '',
      'export default class {',
      '  @Log',
      '  m() {}',
      '}',
      'export @Dec class B {',
      '  @D() n() {}',
      '}',
      '',
    ].join('\n'),
    'bom.ts': '\ufeff@Dec\nexport class A {\n  m() {}\n}\nfunction f() {\n  return 1;\n}\n',
    'cr.ts': '// note\rfunction f(x) {\r  return x;\r}\r\rclass C {\r  @Log\r  m() {}\r}\r',
    'crlf.js': '\r\nfunction f() {\r\n  return 1;\r\n}\r\n\rclass C {\r\n  m() {}\r\n}\r\n',
    'separators.js': 'const a = 1; // a comment ends at U+2028\u2028function f() {\n  return "a\u2028b";\n}\u2029class C {\n  m() {}\n}\n',
  };
  let dir: string;
  let ours: ExtractedFile[];
  let pyTruth: ReturnType<typeof astTruth>;
  let tsDefs: Def[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-lines-'));
    await mkdir(join(dir, 'lib'));
    const all = { ...python, ...scripts };
    for (const [name, content] of Object.entries(all)) await writeFile(join(dir, 'lib', name), content);
    // What the worker does: the file's bytes as UTF-8, byte order mark and all.
    ours = extract(Object.entries(all).map(([path, content]) => ({ path, content })));
    pyTruth = astTruth(
      dir,
      Object.keys(python).map((n) => join(dir, 'lib', n)),
    );
    // The compiler reads files through ts.sys.readFile, which drops a byte order mark.
    tsDefs = Object.keys(scripts).flatMap((n) => tsTruth(n, ts.sys.readFile(join(dir, 'lib', n))!));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const oursIn = (files: Record<string, string>) => ours.filter((f) => f.path in files);

  it('finds every definition at the line ast gives it (the def line, below its decorators)', () => {
    const s = score(oursOf(oursIn(python)), pyTruth.defs);
    expect(s.n).toBe(12);
    expect({ missing: s.missing, extra: s.extra }).toEqual({ missing: [], extra: [] });
  });

  it('agrees with ast on spans: columns in UTF-8 bytes, end lines and end columns', () => {
    const byKey = new Map(pyTruth.defs.map((d) => [`${d.path}|${d.name}|${d.line}`, d]));
    for (const f of oursIn(python)) {
      for (const s of f.symbols) {
        const t = byKey.get(`${f.path}|${s.qualifiedName}|${s.startLine}`)!;
        expect({ col: s.startColumn, end: s.endLine, endCol: s.endColumn }, `${f.path} ${s.qualifiedName}`).toEqual({
          col: t.col,
          end: t.end,
          endCol: t.endCol,
        });
        expect(s.docstring, `${f.path} ${s.qualifiedName}`).toBe(t.doc);
      }
    }
  });

  it('finds every definition at the line the compiler API gives it, and ends it there too', () => {
    const s = score(oursOf(oursIn(scripts)), tsDefs);
    expect(s.n).toBe(20);
    expect({ missing: s.missing, extra: s.extra }).toEqual({ missing: [], extra: [] });
    const ends = new Map(tsDefs.map((d) => [`${d.path}|${d.name}|${d.line}`, d.endLine]));
    for (const f of oursIn(scripts))
      for (const s of f.symbols) expect(s.endLine, `${f.path} ${s.qualifiedName}`).toBe(ends.get(`${f.path}|${s.qualifiedName}|${s.startLine}`));
  });

  it("gives each chunk the lines of its code, counted as the language's tools count them", () => {
    for (const f of ours) {
      const text = (python[f.path] ?? scripts[f.path])!.replace(/^\ufeff/, '');
      const lines = text.split(f.path.endsWith('.py') ? /\r\n|\r|\n/ : /\r\n|[\r\n\u2028\u2029]/);
      for (const c of f.chunks) {
        const code = c.code.split(/\r\n|[\r\n\u2028\u2029]/);
        const where = `${f.path} ${c.symbol ?? 'module'} ${c.startLine}-${c.endLine}`;
        expect(c.code.includes('\ufeff'), where).toBe(false);
        expect(code.length, where).toBe(c.endLine - c.startLine + 1);
        expect(lines[c.startLine - 1], where).toContain(code[0]!.trim());
        expect(lines[c.endLine - 1], where).toContain(code.at(-1)!.trim());
      }
    }
  });

  it("starts a decorated member's chunk at its first decorator, also with a comment between them", () => {
    const onClick = ours.find((f) => f.path === 'decorated.ts')!.chunks.find((c) => c.symbol === 'A.onClick')!;
    expect(onClick).toMatchObject({ startLine: 7, endLine: 11 });
    expect(onClick.code.startsWith('@HostListener("click")\n  /** Handles clicks. */\n  onClick(e: Event) {')).toBe(true);
  });
});
