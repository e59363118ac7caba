import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { CodeChunk } from '../../shared/index.ts';
import { chunkFiles, chunkSource, MAX_CLASS_DEPTH } from '../../workers/chunking/chunker.ts';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Source from lines, so a test reads its own line numbers. */
const lines = (...l: string[]): string => l.join('\n') + '\n';

/** The chunk as it must come out, with the hash computed here over the expected content. */
function expected(
  path: string,
  language: CodeChunk['language'],
  kind: CodeChunk['kind'],
  symbol: string,
  startLine: number,
  endLine: number,
  content: string,
): CodeChunk {
  return { path, language, kind, symbol, startLine, endLine, contentHash: sha256(content), content };
}

describe('chunkSource: TypeScript', () => {
  const source = lines(
    "import { z } from 'zod';", //                    1
    '', //                                             2
    'export function add(a: number, b: number): number {', // 3
    '  return a + b;', //                              4
    '}', //                                            5
    '', //                                             6
    'export const double = (n: number): number => {', // 7
    '  const twice = (x: number) => x * 2;', //        8
    '  return twice(n);', //                           9
    '};', //                                           10
    '', //                                             11
    'export class Counter {', //                      12
    '  private n = 0;', //                             13
    '', //                                             14
    '  @logged()', //                                  15
    '  increment(by = 1): number {', //                16
    '    this.n += by;', //                            17
    '    return this.n;', //                           18
    '  }', //                                          19
    '', //                                             20
    '  reset = () => {', //                            21
    '    this.n = 0;', //                              22
    '  };', //                                         23
    '}', //                                            24
  );
  const chunks = chunkSource({ path: 'src/math.ts', content: source }).chunks;

  it('emits an exported function declaration with its export keyword, lines and hash', () => {
    expect(chunks[0]).toEqual(
      expected('src/math.ts', 'typescript', 'function', 'add', 3, 5, 'export function add(a: number, b: number): number {\n  return a + b;\n}'),
    );
  });

  it('emits an arrow function assigned to a const as a function covering the whole statement', () => {
    expect(chunks[1]).toEqual(
      expected(
        'src/math.ts',
        'typescript',
        'function',
        'double',
        7,
        10,
        'export const double = (n: number): number => {\n  const twice = (x: number) => x * 2;\n  return twice(n);\n};',
      ),
    );
  });

  it('keeps functions nested in a function inside that function instead of emitting them', () => {
    expect(chunks.map((c) => c.symbol)).not.toContain('twice');
  });

  it('emits a class and then its methods qualified as Class.method, a method covering its decorator', () => {
    expect(chunks.slice(2).map(({ kind, symbol, startLine, endLine }) => ({ kind, symbol, startLine, endLine }))).toEqual([
      { kind: 'class', symbol: 'Counter', startLine: 12, endLine: 24 },
      { kind: 'method', symbol: 'Counter.increment', startLine: 15, endLine: 19 },
      { kind: 'method', symbol: 'Counter.reset', startLine: 21, endLine: 23 },
    ]);
    expect(chunks[3]!.content).toBe('@logged()\n  increment(by = 1): number {\n    this.n += by;\n    return this.n;\n  }');
    expect(chunks[3]!.contentHash).toBe(sha256(chunks[3]!.content));
  });

  it('emits declarations nested in exports: export default, namespaces, abstract classes', () => {
    const result = chunkSource({
      path: 'src/exports.mts',
      content: lines(
        'export default function () {}',
        'export namespace Shapes {',
        '  export function area(r: number) { return Math.PI * r * r; }',
        '}',
        'export abstract class Base {',
        '  abstract name(): string;',
        '  greet() { return `hi ${this.name()}`; }',
        '}',
      ),
    });
    expect(result.chunks.map((c) => [c.kind, c.symbol, c.startLine, c.endLine])).toEqual([
      ['function', 'default', 1, 1],
      ['function', 'area', 3, 3],
      ['class', 'Base', 5, 8],
      ['method', 'Base.greet', 7, 7],
    ]);
  });

  it('skips overload signatures and emits only the implementation', () => {
    const result = chunkSource({
      path: 'o.ts',
      content: lines('function f(a: string): string;', 'function f(a: number): number;', 'function f(a: any) {', '  return a;', '}'),
    });
    expect(result.chunks.map((c) => [c.symbol, c.startLine, c.endLine])).toEqual([['f', 3, 5]]);
  });

  it('covers a decorated exported class from its first decorator', () => {
    const result = chunkSource({ path: 'c.ts', content: lines('@Injectable()', 'export class Service {', '  run() {}', '}') });
    expect(result.chunks[0]).toEqual(expected('c.ts', 'typescript', 'class', 'Service', 1, 4, '@Injectable()\nexport class Service {\n  run() {}\n}'));
  });
});

describe('chunkSource: TSX', () => {
  it('parses JSX in a .tsx file and emits its components', () => {
    const source = lines(
      "import { useState } from 'react';",
      '',
      'export const Badge = ({ label }: { label: string }) => <span className="badge">{label}</span>;',
      '',
      'export function Toggle() {',
      '  const [on, setOn] = useState(false);',
      '  return <button onClick={() => setOn(!on)}>{on ? <Badge label="on" /> : "off"}</button>;',
      '}',
    );
    const result = chunkSource({ path: 'ui/Toggle.tsx', content: source });
    expect(result.language).toBe('tsx');
    expect(result.chunks).toEqual([
      expected(
        'ui/Toggle.tsx',
        'tsx',
        'function',
        'Badge',
        3,
        3,
        'export const Badge = ({ label }: { label: string }) => <span className="badge">{label}</span>;',
      ),
      expected(
        'ui/Toggle.tsx',
        'tsx',
        'function',
        'Toggle',
        5,
        8,
        'export function Toggle() {\n  const [on, setOn] = useState(false);\n  return <button onClick={() => setOn(!on)}>{on ? <Badge label="on" /> : "off"}</button>;\n}',
      ),
    ]);
  });
});

describe('chunkSource: JavaScript', () => {
  const source = lines(
    "'use strict';", //                              1
    'var legacy = function (x) {', //                2
    '  return x;', //                                3
    '};', //                                         4
    'let gen = function* () { yield 1; };', //       5
    'class Queue {', //                              6
    '  #items = [];', //                             7
    '  push(item) { this.#items.push(item); }', //   8
    '  static from(list) {', //                      9
    '    return new Queue();', //                   10
    '  }', //                                       11
    '  onDrain = function () {};', //              12
    '}', //                                         13
    '(function () {', //                            14
    '  function insideIife() {}', //                15
    '})();', //                                     16
  );
  const chunks = chunkSource({ path: 'lib/queue.cjs', content: source }).chunks;

  it('emits function expressions assigned to var and let as functions', () => {
    expect(chunks.slice(0, 2)).toEqual([
      expected('lib/queue.cjs', 'javascript', 'function', 'legacy', 2, 4, 'var legacy = function (x) {\n  return x;\n};'),
      expected('lib/queue.cjs', 'javascript', 'function', 'gen', 5, 5, 'let gen = function* () { yield 1; };'),
    ]);
  });

  it('emits class methods, static methods and function-valued fields as Class.method', () => {
    expect(chunks.slice(2, 6).map((c) => [c.kind, c.symbol, c.startLine, c.endLine])).toEqual([
      ['class', 'Queue', 6, 13],
      ['method', 'Queue.push', 8, 8],
      ['method', 'Queue.from', 9, 11],
      ['method', 'Queue.onDrain', 12, 12],
    ]);
  });

  it('emits each declarator of a multi-declarator statement as its own function', () => {
    const result = chunkSource({ path: 'm.js', content: 'export const a = () => 1, b = function named() {};\n' });
    expect(result.chunks).toEqual([
      expected('m.js', 'javascript', 'function', 'a', 1, 1, 'a = () => 1'),
      expected('m.js', 'javascript', 'function', 'b', 1, 1, 'b = function named() {}'),
    ]);
  });

  it('qualifies private and computed method names with their class', () => {
    const result = chunkSource({
      path: 'p.mjs',
      content: lines('class Bag {', '  #secret() {}', '  [Symbol.iterator]() {}', '  get size() { return 0; }', '}'),
    });
    expect(result.chunks.map((c) => c.symbol)).toEqual(['Bag', 'Bag.#secret', 'Bag.[Symbol.iterator]', 'Bag.size']);
  });

  it('emits a function declared inside an anonymous top-level function', () => {
    expect(chunks[6]).toEqual(expected('lib/queue.cjs', 'javascript', 'function', 'insideIife', 15, 15, 'function insideIife() {}'));
  });
});

describe('chunkSource: Python', () => {
  const source = lines(
    'import functools', //                           1
    '', //                                           2
    '@functools.cache', //                           3
    '@trace(level=2)', //                            4
    'def fib(n):', //                                5
    '    def helper(k):', //                         6
    '        return k', //                           7
    '    return n if n < 2 else fib(n - 1) + fib(n - 2)', // 8
    '', //                                           9
    '', //                                          10
    'class Store(Base):', //                        11
    '    """Keeps things."""', //                   12
    '', //                                          13
    '    @property', //                             14
    '    def size(self):', //                       15
    '        return len(self.items)', //            16
    '', //                                          17
    '    async def load(self, key):', //            18
    '        return await self.backend.get(key)', // 19
    '', //                                          20
    '    class Meta:', //                           21
    '        def describe(cls):', //                22
    '            return "store"', //                23
    '', //                                          24
    '', //                                          25
    'async def main():', //                         26
    '    await Store().load("k")', //               27
  );
  const chunks = chunkSource({ path: 'app/store.py', content: source }).chunks;

  it('emits a decorated function covering its decorators', () => {
    expect(chunks[0]).toEqual(
      expected(
        'app/store.py',
        'python',
        'function',
        'fib',
        3,
        8,
        '@functools.cache\n@trace(level=2)\ndef fib(n):\n    def helper(k):\n        return k\n    return n if n < 2 else fib(n - 1) + fib(n - 2)',
      ),
    );
  });

  it('emits methods inside a class as Class.method, nested classes as Outer.Inner', () => {
    expect(chunks.slice(1).map((c) => [c.kind, c.symbol, c.startLine, c.endLine])).toEqual([
      ['class', 'Store', 11, 23],
      ['method', 'Store.size', 14, 16],
      ['method', 'Store.load', 18, 19],
      ['class', 'Store.Meta', 21, 23],
      ['method', 'Store.Meta.describe', 22, 23],
      ['function', 'main', 26, 27],
    ]);
  });

  it('ends a chunk at its last line, without the blank lines after it', () => {
    const store = chunks.find((c) => c.symbol === 'Store')!;
    expect(store.content.endsWith('return "store"')).toBe(true);
    expect(store.content.split('\n')).toHaveLength(store.endLine - store.startLine + 1);
  });
});

describe('chunkSource: byte order marks and line breaks', () => {
  const py = ['# helpers', 'def first():', '    return 1', '', 'def second():', '    return 2'];
  const rows = (content: string, path = 'm.py') => chunkSource({ path, content }).chunks.map((c) => [c.symbol, c.startLine, c.endLine]);
  const expectedPy = [
    ['first', 2, 3],
    ['second', 5, 6],
  ];

  it('drops a leading byte order mark, as Python and the TypeScript compiler read a file', () => {
    const chunks = chunkSource({ path: 'm.py', content: '\ufeff' + py.join('\n') }).chunks;
    expect(chunks.map((c) => [c.symbol, c.startLine, c.endLine])).toEqual(expectedPy);
    const ts = chunkSource({ path: 'm.ts', content: '\ufefffunction a() {}\n' }).chunks[0]!;
    expect(ts).toMatchObject({ startLine: 1, content: 'function a() {}' });
  });

  it('counts lone-CR and CRLF line endings as Python does, and loses no definition after a comment', () => {
    // tree-sitter reads a lone CR as a space: the comment ran on over `def first`, which was lost.
    expect(rows(py.join('\r'))).toEqual(expectedPy);
    expect(rows(py.join('\r\n'))).toEqual(expectedPy);
    const lone = chunkSource({ path: 'm.py', content: py.join('\r') }).chunks[0]!;
    expect(lone.content).toBe('def first():\n    return 1');
  });

  it('counts U+2028 and U+2029 as line breaks in TypeScript, as the compiler does, and not in Python', () => {
    const ts = ['// a\u2028// b', 'function a() {', '  return 1;', '}\u2029function b() {}'].join('\n');
    expect(rows(ts, 'm.ts')).toEqual([
      ['a', 3, 5],
      ['b', 6, 6],
    ]);
    const inString = ['x = "\u2028"', 'def f():', '    pass'].join('\n');
    expect(rows(inString)).toEqual([['f', 2, 3]]);
  });
});

describe('chunkSource: languages and errors', () => {
  it('reports an unknown extension as a per-file error instead of throwing', () => {
    expect(chunkSource({ path: 'build/Makefile.rb', content: 'def x; end' })).toEqual({
      path: 'build/Makefile.rb',
      language: null,
      chunks: [],
      error: 'unsupported file type ".rb": set language to one of typescript, tsx, javascript, python',
    });
  });

  it('uses an explicit language over the extension', () => {
    const result = chunkSource({ path: 'bin/run', language: 'python', content: 'def run():\n    pass\n' });
    expect(result.chunks.map((c) => [c.language, c.symbol])).toEqual([['python', 'run']]);
  });

  it('keeps the other files going when one has an unknown language', () => {
    const result = chunkFiles([
      { path: 'a.go', content: 'package a' },
      { path: 'b.js', content: 'function b() {}\n' },
    ]);
    expect(result.files).toEqual([
      { path: 'a.go', language: null, chunks: 0, error: 'unsupported file type ".go": set language to one of typescript, tsx, javascript, python' },
      { path: 'b.js', language: 'javascript', chunks: 1 },
    ]);
    expect(result.chunks.map((c) => c.symbol)).toEqual(['b']);
  });

  it('chunks a file with syntax errors as far as tree-sitter recovers it', () => {
    const result = chunkSource({ path: 'broken.ts', content: lines('function ok() { return 1; }', 'function broken( {', 'class After { m() {} }') });
    expect(result.error).toBeUndefined();
    expect(result.chunks.map((c) => c.symbol)).toContain('ok');
  });

  it('slices content by UTF-16 offsets, so text after astral characters stays aligned', () => {
    const content = lines('const greeting = "héllo 😀 wörld 🎉";', 'function after() { return "✓"; }');
    const result = chunkSource({ path: 'u.js', content });
    expect(result.chunks).toEqual([expected('u.js', 'javascript', 'function', 'after', 2, 2, 'function after() { return "✓"; }')]);
  });

  it('parses a 200 KB file in one piece and finds its last function on the right line', () => {
    const count = 3200;
    const parts: string[] = [];
    for (let i = 0; i < count; i++) parts.push(`export function f${i}(a: number): number {\n  return a * ${i}; // ü\n}\n`);
    const content = parts.join('');
    expect(content.length).toBeGreaterThan(200 * 1024);
    const result = chunkSource({ path: 'big.ts', content });
    expect(result.chunks).toHaveLength(count);
    const last = result.chunks[count - 1]!;
    expect(last).toEqual(expected('big.ts', 'typescript', 'function', `f${count - 1}`, 3 * count - 2, 3 * count, parts[count - 1]!.trimEnd()));
  });
});

// Issue 16: every nested class's chunk repeated everything inside it, so the output grew with the square
// of the input (160 nested classes: 83 times the input). Classes get chunks down to MAX_CLASS_DEPTH levels.
describe('chunkSource: output bounded by the input, however deep classes nest', () => {
  const nestedTs = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += `class C${i} {\n  m${i}() { return ${i}; }\n  inner = `;
    return s + 'null;\n' + '}\n'.repeat(n);
  };
  const nestedPy = (n: number) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}class C${i}:\n${' '.repeat(i)} def m${i}(self): return ${i}\n`).join('');
  const ratio = (path: string, content: string) => chunkSource({ path, content }).chunks.reduce((n, c) => n + c.content.length, 0) / content.length;

  for (const [language, path, make] of [
    ['TypeScript', 'deep.ts', nestedTs],
    ['Python', 'deep.py', nestedPy],
  ] as const) {
    it(`keeps ${language} output within a constant multiple of the input at depth 20 and at depth 160`, () => {
      const shallow = ratio(path, make(20));
      const deep = ratio(path, make(160));
      expect(deep).toBeLessThanOrEqual(MAX_CLASS_DEPTH + 1);
      expect(deep).toBeLessThanOrEqual(shallow * 1.1);
    });
  }

  it('chunks classes down to MAX_CLASS_DEPTH levels; deeper ones belong to the chunk that holds them', () => {
    const symbols = chunkSource({ path: 'deep.ts', content: nestedTs(6) }).chunks.map((c) => `${c.kind} ${c.symbol}`);
    expect(symbols).toEqual(['class C0', 'method C0.m0', 'class C0.inner', 'method C0.inner.m1', 'class C0.inner.inner', 'method C0.inner.inner.m2']);
  });

  it('chunks a file of 11 000 nested classes without running out of stack', () => {
    let s = '';
    for (let i = 0; i < 11_000; i++) s += `class C${i} { m() {} x = `;
    const r = chunkSource({ path: 'deeper.ts', content: s + 'null;' + '}'.repeat(11_000) });
    expect(r.error).toBeUndefined();
    expect(r.chunks).toHaveLength(2 * MAX_CLASS_DEPTH);
  });
});
