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
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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

describe('Python, against ast (more-itertools 10.5.0)', () => {
  let dir: string;
  let truth: { defs: (Def & { end: number; doc: string | null })[]; imports: Record<string, string[]> };
  let ours: ExtractedFile[];

  beforeAll(async () => {
    const sources = librarySources(libraries.moreItertools);
    ours = extract(sources);
    dir = await mkdtemp(join(tmpdir(), 'parley-ast-'));
    // Ground truth: module and class bodies and the blocks of compound statements, never function bodies.
    const script = `
import ast, json, sys
out = {"defs": [], "imports": {}}
for path in sys.argv[1:]:
    rel = path.split("/lib/", 1)[1]
    tree = ast.parse(open(path, encoding="utf-8").read())
    mods = []
    def visit(stmts, scope):
        for n in stmts:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = n.name if scope is None else scope + "." + n.name
                kind = "class" if isinstance(n, ast.ClassDef) else ("function" if scope is None else "method")
                out["defs"].append({"path": rel, "name": q, "kind": kind, "line": n.lineno, "end": n.end_lineno, "doc": ast.get_docstring(n, clean=True)})
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
    await writeFile(join(dir, 'truth.py'), script);
    const libDir = join(dir, 'lib');
    const paths: string[] = [];
    for (const s of sources) {
      const p = join(libDir, s.path);
      await import('node:fs/promises').then((fs) => fs.mkdir(join(p, '..'), { recursive: true }).then(() => fs.writeFile(p, s.content)));
      paths.push(p);
    }
    truth = JSON.parse(execFileSync('python3', [join(dir, 'truth.py'), ...paths], { maxBuffer: 64 * 1024 * 1024 }).toString());
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
  const line = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const nameLine = (n: ts.Node & { name?: ts.Node }) => (n.name ? line(n.name) : line(n));
  const q = (scope: string | null, name: string) => (scope ? `${scope}.${name}` : name);
  const isFn = (e: ts.Node | undefined) => !!e && (ts.isArrowFunction(e) || ts.isFunctionExpression(e));
  const add = (name: string, kind: string, l: number) => out.push({ path, name, kind, line: l });
  const classBody = (c: ts.ClassLikeDeclaration, scope: string) => {
    for (const m of c.members) {
      if ((ts.isMethodDeclaration(m) || ts.isGetAccessor(m) || ts.isSetAccessor(m)) && m.body && m.name)
        add(q(scope, m.name.getText(sf)), 'method', nameLine(m));
      else if (ts.isConstructorDeclaration(m) && m.body)
        add(q(scope, 'constructor'), 'method', line(m.getChildren(sf).find((c) => c.kind === ts.SyntaxKind.ConstructorKeyword) ?? m));
      else if (ts.isPropertyDeclaration(m) && m.name && m.initializer && isFn(m.initializer)) add(q(scope, m.name.getText(sf)), 'method', nameLine(m));
      else if (ts.isPropertyDeclaration(m) && m.name && m.initializer && ts.isClassExpression(m.initializer)) {
        add(q(scope, m.name.getText(sf)), 'class', nameLine(m));
        classBody(m.initializer, q(scope, m.name.getText(sf)));
      } else ts.forEachChild(m, (c) => visit(c, null));
    }
  };
  function visit(node: ts.Node, scope: string | null): void {
    if (ts.isFunctionDeclaration(node)) {
      if (node.body) add(q(scope, node.name ? node.name.text : 'default'), 'function', node.name ? nameLine(node) : line(node));
      return;
    }
    if (ts.isClassDeclaration(node)) {
      const name = node.name ? node.name.text : 'default';
      add(q(scope, name), 'class', node.name ? nameLine(node) : line(node));
      classBody(node, q(scope, name));
      return;
    }
    if (ts.isInterfaceDeclaration(node)) return void add(q(scope, node.name.text), 'interface', nameLine(node));
    if (ts.isTypeAliasDeclaration(node)) return void add(q(scope, node.name.text), 'type', nameLine(node));
    if (ts.isEnumDeclaration(node)) return void add(q(scope, node.name.text), 'enum', nameLine(node));
    if (ts.isVariableStatement(node)) {
      const decls = node.declarationList.declarations;
      for (const d of decls) {
        if (ts.isIdentifier(d.name) && d.initializer && isFn(d.initializer)) add(q(scope, d.name.text), 'function', decls.length === 1 ? line(node) : line(d));
        else if (ts.isIdentifier(d.name) && d.initializer && ts.isClassExpression(d.initializer)) {
          add(q(scope, d.name.text), 'class', decls.length === 1 ? line(node) : line(d));
          classBody(d.initializer, q(scope, d.name.text));
        } else if (d.initializer) visit(d.initializer, scope);
      }
      return;
    }
    if (ts.isExportAssignment(node) && (isFn(node.expression) || ts.isClassExpression(node.expression))) {
      const e = node.expression as ts.FunctionExpression | ts.ClassExpression;
      const name = e.name ? e.name.text : 'default';
      if (ts.isClassExpression(e)) {
        add(name, 'class', line(node));
        classBody(e, name);
      } else add(name, 'function', line(node));
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
