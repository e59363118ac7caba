/**
 * Benchmark: the code.chunk pool against bare tree-sitter.
 *
 *   npx tsx bench/chunking.ts
 *
 * Env: BENCH_THREADS (default os.availableParallelism()), BENCH_SEED, BENCH_MB
 * (corpus size, default 4), BENCH_PAIRS (default 3).
 *
 * It generates a deterministic corpus of TypeScript, JavaScript and Python
 * from templates with a seeded PRNG, then measures A and B interleaved
 * (A B A B A B) on that same corpus, after one unmeasured warm-up of each:
 * - A, the baseline: one plain worker_thread that parses every file with
 *   tree-sitter and walks the top level of each tree. No piscina, no chunker,
 *   no hashing, and the corpus is already in the thread.
 * - B, our pool: `createChunkPool({ threads: N }).run(files)` on the corpus as
 *   one job: cloning the files in and the chunks out, sharding, chunking,
 *   hashing.
 * Target: B >= 0.8 x N x A, i.e. the pool keeps 80% of linear scaling over
 * the bare parser.
 *
 * After the pairs, "where B's CPU goes": each step of B's work timed on its
 * own in this thread, on the same corpus (median of 3): A's parse and walk,
 * the chunker (parse, chunks, headers, hashes), the thread's validation of
 * its task, and the structured clones of the files in and the chunks out. The
 * steps' sum against A's is the CPU efficiency the pool can reach at best.
 *
 * The baseline thread is this same file, loaded through tsx's require hook:
 * on Node 20 a worker's .ts entry does not load through `--import tsx`.
 */
import { availableParallelism, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import Parser from 'tree-sitter';
import JavaScript from 'tree-sitter-javascript';
import Python from 'tree-sitter-python';
import TypeScript from 'tree-sitter-typescript';
import { z } from 'zod';
import { SourceFile, type CodeChunkResult } from '../shared/index.ts';
import { appendFileChunks, chunkSource } from '../workers/chunking/chunker.ts';
import { createChunkPool } from '../workers/chunking/pool.ts';

const Env = z.object({
  BENCH_THREADS: z.coerce.number().int().min(1).max(256).default(availableParallelism()),
  BENCH_SEED: z.coerce.number().int().min(0).max(0xffffffff).default(0x5eed_c0de),
  BENCH_MB: z.coerce.number().min(0.1).max(64).default(4),
  BENCH_PAIRS: z.coerce.number().int().min(1).max(20).default(3),
});

// ---- corpus --------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const verbs = ['load', 'save', 'parse', 'render', 'merge', 'split', 'fetch', 'compute', 'resolve', 'update', 'index', 'score'];
const nouns = ['User', 'Order', 'Token', 'Chunk', 'Report', 'Queue', 'Model', 'Session', 'Invoice', 'Graph', 'Cache', 'Event'];
const fields = ['id', 'name', 'count', 'total', 'weight', 'createdAt', 'status', 'owner', 'limit', 'offset'];

function corpusGenerator(random: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));
  let serial = 0;
  const ident = (): string => `${pick(verbs)}${pick(nouns)}${serial++}`;
  const type = (): string => `${pick(nouns)}${serial++}`;
  const repeat = (n: number, f: (i: number) => string): string => Array.from({ length: n }, (_, i) => f(i)).join('');

  const ts = [
    () =>
      `export interface ${type()}Options {\n${repeat(int(2, 6), () => `  ${pick(fields)}${random() < 0.3 ? '?' : ''}: ${pick(['string', 'number', 'boolean', 'Date'])};\n`)}}\n\n`,
    () =>
      `/** ${pick(verbs)}s the ${pick(nouns).toLowerCase()} and keeps a running ${pick(fields)}. */\nexport function ${ident()}(items: readonly { ${pick(fields)}: number }[], limit = ${int(1, 999)}): number {\n  let total = 0;\n  for (const item of items) {\n    const v = Object.values(item)[0] ?? 0;\n    if (v > limit) total += v * ${int(2, 9)};\n    else total -= Math.min(v, ${int(1, 50)});\n  }\n  return total;\n}\n\n`,
    () =>
      `export const ${ident()} = async (input: string, sep = '${pick([',', ';', '|', ':'])}'): Promise<string[]> => {\n  const parts = input.split(sep).map((p) => p.trim());\n  return parts.filter((p) => p.length > ${int(0, 5)}).sort((a, b) => a.localeCompare(b));\n};\n\n`,
    () => {
      const name = type();
      const methods = repeat(
        int(2, 7),
        () =>
          `\n  ${pick(['', 'async ', 'private ', 'static '])}${ident()}(key: string, value?: number): ${random() < 0.5 ? 'number' : 'void'} {\n    const hit = this.cache.get(key);\n    if (hit !== undefined && value === undefined) ${random() < 0.5 ? 'return hit' : 'return'};\n    this.cache.set(key, (value ?? 0) + ${int(1, 100)});\n    ${random() < 0.5 ? `return this.cache.size * ${int(1, 9)};` : 'this.touched = Date.now();'}\n  }\n`,
      );
      return `export class ${name} extends Base${int(1, 9)} {\n  private readonly cache = new Map<string, number>();\n  private touched = 0;\n  constructor(private readonly opts: { ${pick(fields)}: number }) {\n    super();\n  }\n${methods}}\n\n`;
    },
  ];

  const js = [
    () =>
      `function ${ident()}(list, by) {\n  return list.reduce((acc, x) => {\n    const k = x[by] ?? '${pick(fields)}';\n    (acc[k] ||= []).push(x);\n    return acc;\n  }, {});\n}\n\n`,
    () =>
      `const ${ident()} = function (req, res) {\n  if (!req.${pick(fields)}) return res.status(${pick([400, 404, 409])}).json({ error: '${pick(verbs)} failed' });\n  res.json({ ok: true, n: ${int(1, 1000)} });\n};\n\n`,
    () => {
      const name = type();
      return `class ${name} {\n  #items = [];\n${repeat(int(2, 6), () => `  ${ident()}(x) {\n    this.#items.push(x * ${int(2, 9)});\n    return this.#items.length > ${int(1, 64)} ? this.#items.shift() : null;\n  }\n`)}  handle = (e) => this.#items.push(e);\n}\nmodule.exports.${name} = ${name};\n\n`;
    },
    () =>
      `// ${pick(verbs)} ${pick(nouns).toLowerCase()}s in batches\nconst ${pick(fields)}${serial++} = [${repeat(int(4, 16), () => `${int(0, 9999)}, `)}];\n\n`,
  ];

  const py = [
    () =>
      `def ${ident()}(items, limit=${int(1, 999)}):\n    """${pick(verbs).replace(/^./, (c) => c.toUpperCase())} items above the limit."""\n    total = 0\n    for item in items:\n        if item.${pick(fields)} > limit:\n            total += item.${pick(fields)} * ${int(2, 9)}\n    return total\n\n\n`,
    () =>
      `@${pick(['functools.cache', 'staticmethod', 'retry(times=3)', 'traced'])}\ndef ${ident()}(key, *args, **kwargs):\n    parts = [str(a).strip() for a in args if a]\n    return {"key": key, "parts": parts, "n": len(kwargs) + ${int(1, 50)}}\n\n\n`,
    () => {
      const name = type();
      return `class ${name}(Base${int(1, 9)}):\n    """Keeps ${pick(nouns).toLowerCase()}s."""\n\n    def __init__(self, ${pick(fields)}=None):\n        self.cache = {}\n${repeat(int(2, 6), () => `\n    ${random() < 0.3 ? '@property\n    ' : ''}def ${ident()}(self, key=None):\n        if key in self.cache:\n            return self.cache[key]\n        self.cache[key] = len(self.cache) * ${int(1, 9)}\n        return self.cache[key]\n`)}\n\n`;
    },
  ];

  const templates = { ts, js, py } as const;
  return function file(index: number): SourceFile {
    const ext = pick(['ts', 'ts', 'ts', 'js', 'js', 'py', 'py'] as const);
    const target = int(4, 48) * 1024;
    let content = ext === 'py' ? 'import functools\n\n\n' : ext === 'ts' ? "import { Base1 } from './base';\n\n" : "'use strict';\n\n";
    while (content.length < target) content += pick(templates[ext])();
    return { path: `src/gen/file${index}.${ext}`, content };
  };
}

function generateCorpus(seed: number, megabytes: number): SourceFile[] {
  const file = corpusGenerator(prng(seed));
  const files: SourceFile[] = [];
  let size = 0;
  while (size < megabytes * 1_000_000) {
    const f = file(files.length);
    files.push(f);
    size += f.content.length;
  }
  return files;
}

// ---- A: the baseline thread ------------------------------------------------------

/** Baseline thread protocol: in `'parse'`, out `{ nodes }` (top-level named nodes seen, so the walk is not optimised away). */
type BaselineReply = { nodes: number };

/** A's work: parse every file and walk the top level of its tree; answers the named nodes seen. */
function parseAndWalk(): (files: readonly SourceFile[]) => number {
  const grammars = { ts: TypeScript.typescript, js: JavaScript, py: Python } as Record<string, Parser.Language>;
  const parsers = new Map<string, Parser>();
  const parserFor = (ext: string): Parser => {
    let p = parsers.get(ext);
    if (!p) {
      p = new Parser();
      p.setLanguage(grammars[ext]!);
      parsers.set(ext, p);
    }
    return p;
  };
  return (files) => {
    let nodes = 0;
    for (const f of files) {
      const cursor = parserFor(f.path.slice(f.path.lastIndexOf('.') + 1))
        .parse(f.content)
        .walk();
      if (cursor.gotoFirstChild())
        do if (cursor.nodeIsNamed && cursor.endIndex > cursor.startIndex) nodes++;
        while (cursor.gotoNextSibling());
    }
    return nodes;
  };
}

function baselineThread(files: SourceFile[]): void {
  const pass = parseAndWalk();
  parentPort!.on('message', () => parentPort!.postMessage({ nodes: pass(files) } satisfies BaselineReply));
}

/** CPU milliseconds of `f` in this thread, median of three runs. */
function cpuOf(f: () => unknown): number {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = process.cpuUsage();
    f();
    const d = process.cpuUsage(t0);
    runs.push((d.user + d.system) / 1000);
  }
  return median(runs);
}

/** B's work one step at a time in this thread (see the file comment), against A's. */
function breakdown(files: readonly SourceFile[], mb: number): void {
  const walk = parseAndWalk();
  walk(files); // warm the parsers
  const a = cpuOf(() => walk(files));
  let result: CodeChunkResult = { chunks: [], files: [] };
  const chunk = cpuOf(() => {
    result = { chunks: [], files: [] };
    for (const f of files) appendFileChunks(result, chunkSource(f));
  });
  const Files = z.array(SourceFile);
  const validate = cpuOf(() => Files.parse(files));
  const cloneIn = cpuOf(() => structuredClone({ files }));
  const cloneOut = cpuOf(() => structuredClone({ ok: true, result }));
  const b = chunk + validate + cloneIn + cloneOut;
  const perMb = (ms: number) => `${(ms / mb).toFixed(0)} ms/MB`;
  console.log(`where B's CPU goes (one thread, one step at a time, median of 3; ${result.chunks.length} chunks):`);
  console.log(`  A, parse and walk:                         ${perMb(a)}`);
  console.log(`  B, the chunker (parse, chunks, headers):   ${perMb(chunk)}  (${(chunk / a).toFixed(2)}× A)`);
  console.log(`  B, the thread's validation of its task:    ${perMb(validate)}`);
  console.log(`  B, structured clone in (the files):        ${perMb(cloneIn)}`);
  console.log(`  B, structured clone out (the chunks):      ${perMb(cloneOut)}`);
  console.log(`  efficiency from the steps (A / B's sum): ${(a / b).toFixed(2)}; without clones and validation: ${(a / chunk).toFixed(2)}`);
}

function startBaseline(files: SourceFile[]): { pass(): Promise<BaselineReply>; stop(): Promise<number> } {
  const self = fileURLToPath(import.meta.url);
  const tsxCjs = createRequire(import.meta.url).resolve('tsx/cjs/api');
  const worker = new Worker(`require(${JSON.stringify(tsxCjs)}).require(${JSON.stringify(self)}, ${JSON.stringify(self)})`, {
    eval: true,
    workerData: { role: 'baseline', files },
  });
  return {
    pass: () =>
      new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.postMessage('parse');
      }),
    // Between passes the thread is idle, never inside a parse (see pool.ts).
    stop: () => worker.terminate(),
  };
}

// ---- main ----------------------------------------------------------------------------

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Wall time, and CPU time of the whole process (all its threads) over the same span. */
async function time<T>(f: () => Promise<T>): Promise<{ ms: number; cpuMs: number; value: T }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await f();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, value };
}

const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const threads = env.BENCH_THREADS;
  console.log(`seed=${env.BENCH_SEED} (0x${env.BENCH_SEED.toString(16)})  threads=${threads}  node=${process.version}`);

  const files = generateCorpus(env.BENCH_SEED, env.BENCH_MB);
  const bytes = files.reduce((n, f) => n + Buffer.byteLength(f.content), 0);
  const mb = bytes / 1_000_000;
  const counts = new Map<string, number>();
  for (const f of files) {
    const ext = f.path.slice(f.path.lastIndexOf('.') + 1);
    counts.set(ext, (counts.get(ext) ?? 0) + 1);
  }
  const byExt = [...counts].map(([ext, n]) => `${ext}:${n}`).join(' ');
  console.log(`corpus: ${files.length} files (${byExt}), ${mb.toFixed(2)} MB`);

  const baseline = startBaseline(files);
  const pool = createChunkPool({ threads });
  try {
    const warmA = await time(() => baseline.pass());
    const warmB = await time(() => pool.run(files));
    console.log(
      `warm-up: A ${warmA.ms.toFixed(0)} ms (${warmA.value.nodes} top-level nodes), B ${warmB.ms.toFixed(0)} ms (${warmB.value.chunks.length} chunks)`,
    );

    const a: number[] = [];
    const b: number[] = [];
    const cpuRatios: number[] = [];
    const loadBefore = load();
    for (let i = 0; i < env.BENCH_PAIRS; i++) {
      const ra = await time(() => baseline.pass());
      a.push(mb / (ra.ms / 1000));
      const rb = await time(() => pool.run(files));
      b.push(mb / (rb.ms / 1000));
      cpuRatios.push(ra.cpuMs / rb.cpuMs);
      console.log(
        `pair ${i + 1}: A ${a[i]!.toFixed(2)} MB/s (${ra.ms.toFixed(0)} ms, cpu ${ra.cpuMs.toFixed(0)} ms)   ` +
          `B ${b[i]!.toFixed(2)} MB/s (${rb.ms.toFixed(0)} ms, cpu ${rb.cpuMs.toFixed(0)} ms)   B/A ${(b[i]! / a[i]!).toFixed(2)}`,
      );
    }

    const ratio = median(b.map((x, i) => x / a[i]!));
    const target = 0.8 * threads;
    console.log(`load average (1/5/15 min): before ${loadBefore}, after ${load()} on ${availableParallelism()} cores`);
    console.log(`median A (bare tree-sitter, 1 thread): ${median(a).toFixed(2)} MB/s`);
    console.log(`median B (chunk pool, ${threads} threads): ${median(b).toFixed(2)} MB/s`);
    console.log(
      `median of per-pair B/A: ${ratio.toFixed(2)}   target: B >= 0.8 x ${threads} x A, i.e. B/A >= ${target.toFixed(2)}   ${ratio >= target ? 'MET' : 'NOT MET'}`,
    );
    // Wall-clock ratios mean little on a machine other work is using. CPU
    // time says what the pool costs per MB against the bare parser: at
    // efficiency e, N idle cores give B/A of at most e x N.
    console.log(
      `CPU efficiency (A cpu / B cpu, per-pair median): ${median(cpuRatios).toFixed(2)}   B/A bound with ${threads} idle cores: ${(median(cpuRatios) * threads).toFixed(2)}`,
    );
    breakdown(files, mb);
  } finally {
    await pool.close();
    await baseline.stop();
  }
}

// No top-level await: the baseline thread loads this file as CommonJS.
if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
} else if ((workerData as { role?: string } | null)?.role === 'baseline') baselineThread((workerData as { files: SourceFile[] }).files);
