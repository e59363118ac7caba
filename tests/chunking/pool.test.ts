import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceFile } from '../../shared/index.ts';
import { chunkFiles } from '../../workers/chunking/chunker.ts';
import { createChunkPool, type ChunkPool } from '../../workers/chunking/pool.ts';

const faultyThread = new URL('./fixtures/faulty-thread.ts', import.meta.url);

/** Files in all four languages, large enough (~700 KB) that `run` shards them over both threads. */
function mixedFiles(): SourceFile[] {
  const files: SourceFile[] = [];
  for (let f = 0; f < 24; f++) {
    const body: string[] = [];
    for (let i = 0; i < 300; i++) {
      switch (f % 4) {
        case 0:
          body.push(`export class C${i} {\n  m${i}(x: number): number {\n    return x + ${i};\n  }\n}\n`);
          break;
        case 1:
          body.push(`export const View${i} = () => <div id="v${i}">{${i}}</div>;\n`);
          break;
        case 2:
          body.push(`function g${i}(a) {\n  return a * ${i};\n}\n`);
          break;
        case 3:
          body.push(`class P${i}:\n    def run(self):\n        return ${i}\n\n`);
          break;
      }
    }
    files.push({ path: `src/file${f}.${['ts', 'tsx', 'js', 'py'][f % 4]}`, content: body.join('') });
  }
  files.push({ path: 'README.md', content: '# not code' });
  return files;
}

/** The JobFailure a run rejects with, as plain fields. */
async function failureOf(promise: Promise<unknown>): Promise<{ name: string; code: unknown; message: string }> {
  const err = await promise.then(
    () => {
      throw new Error('expected the run to fail');
    },
    (e: unknown) => e as Error & { code?: unknown },
  );
  return { name: err.name, code: err.code, message: err.message };
}

describe('chunk pool on the real thread', () => {
  let pool: ChunkPool;
  beforeAll(() => {
    pool = createChunkPool({ threads: 2 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('returns the same result as calling the chunker directly, in input order', async () => {
    const files = mixedFiles();
    expect(await pool.run(files)).toEqual(chunkFiles(files));
  });

  it('returns an empty result for no files without using a thread', async () => {
    expect(await pool.run([])).toEqual({ chunks: [], files: [] });
  });

  it('rejects an invalid task with HANDLER_FAILED from the reply data', async () => {
    const failure = await failureOf(pool.run([{ path: '', content: 'function f() {}' }]));
    expect(failure).toMatchObject({ name: 'JobFailure', code: 'HANDLER_FAILED' });
    expect(failure.message).toContain('invalid chunk task');
  });

  it('rejects with CANCELLED when the signal aborts mid-parse, and serves the next run', async () => {
    // Regression: piscina's own abort terminates a running thread, and a thread
    // terminated inside tree-sitter's parse aborted the whole process
    // ("terminate called after throwing an instance of 'Napi::Error'").
    // Several abort points, so at least one lands inside a parse.
    const big = Array.from({ length: 4 }, (_, f) => ({
      path: `big${f}.ts`,
      content: Array.from({ length: 8_000 }, (_, i) => `export function f${i}(a: number) { return a + ${i}; }\n`).join(''),
    }));
    for (const delayMs of [10, 40, 70, 100, 130]) {
      const controller = new AbortController();
      const running = pool.run(big, controller.signal);
      setTimeout(() => controller.abort(new Error('user cancelled')), delayMs);
      expect(await failureOf(running)).toMatchObject({ name: 'JobFailure', code: 'CANCELLED' });
    }
    const after = await pool.run([{ path: 'ok.ts', content: 'function ok() {}\n' }]);
    expect(after.chunks.map((c) => c.symbol)).toEqual(['ok']);
  });

  it('rejects with CANCELLED at once when the signal is already aborted', async () => {
    const failure = await failureOf(pool.run([{ path: 'a.ts', content: 'function a() {}' }], AbortSignal.abort()));
    expect(failure).toMatchObject({ name: 'JobFailure', code: 'CANCELLED' });
  });
});

describe('chunk pool with a thread that crashes', () => {
  let pool: ChunkPool;
  beforeAll(() => {
    pool = createChunkPool({ threads: 2 }, faultyThread);
  });
  afterAll(async () => {
    await pool.close();
  });

  it('rejects only the run whose thread exits mid-task, with INTERNAL, and keeps serving', async () => {
    const crashing = pool.run([{ path: 'fault/exit-mid-task', content: '' }]);
    const healthy = pool.run([{ path: 'fine.py', content: 'def fine():\n    pass\n' }]);
    const failure = await failureOf(crashing);
    expect(failure).toMatchObject({ name: 'JobFailure', code: 'INTERNAL' });
    expect(failure.message).toContain('worker exited with code: 70');
    expect((await healthy).chunks.map((c) => c.symbol)).toEqual(['fine']);
    const after = await pool.run([{ path: 'later.js', content: 'function later() {}\n' }]);
    expect(after.chunks.map((c) => c.symbol)).toEqual(['later']);
  });

  it('rejects the run whose thread throws an uncaught exception mid-task, with INTERNAL, and keeps serving', async () => {
    const failure = await failureOf(pool.run([{ path: 'fault/throw-mid-task', content: '' }]));
    expect(failure).toMatchObject({ name: 'JobFailure', code: 'INTERNAL', message: 'chunk thread failed: uncaught in the chunk thread' });
    const after = await pool.run([{ path: 'later.ts', content: 'const later = () => 1;\n' }]);
    expect(after.chunks.map((c) => c.symbol)).toEqual(['later']);
  });
});

describe('closing the chunk pool', () => {
  it('lets queued and running shards finish before it stops the threads', async () => {
    // Regression: piscina's close() counts task-done events, not idle threads,
    // so small tasks finishing on one thread made it destroy the other while
    // that one was still parsing, which aborted the whole process.
    const pool = createChunkPool({ threads: 2 });
    await pool.run([{ path: 'warm.ts', content: '' }]);
    const long = pool.run([
      { path: 'long.ts', content: Array.from({ length: 8_000 }, (_, i) => `export function f${i}(a: number) { return a + ${i}; }\n`).join('') },
    ]);
    const short = Array.from({ length: 6 }, (_, i) => pool.run([{ path: `short${i}.js`, content: `function s${i}() {}\n` }]));
    await pool.close();
    expect((await long).chunks).toHaveLength(8_000);
    expect((await Promise.all(short)).map((r) => r.chunks[0]?.symbol)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
  });

  it('rejects a run after close with INTERNAL', async () => {
    const pool = createChunkPool({ threads: 1 });
    await pool.close();
    expect(await failureOf(pool.run([{ path: 'a.ts', content: '' }]))).toMatchObject({ code: 'INTERNAL', message: 'the chunk pool is closed' });
  });
});
