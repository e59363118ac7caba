/**
 * The code.chunk thread pool: piscina over thread.ts. Only the worker runtime
 * holds one; handlers reach it through `run`.
 *
 * One `run` is one job's files. Large inputs are split into shards by size and
 * run on several threads at once, so a single job uses the whole pool; the
 * shards' results are put back in input order.
 *
 * Failures come back as `JobFailure`s with a code, never as piscina's errors:
 * - HANDLER_FAILED: a thread rejected its task as invalid (from the reply data);
 * - INTERNAL: a bug in the chunker, or a thread that died mid-task
 *   (process.exit, an uncaught exception). Only that run fails; piscina
 *   replaces the thread and the pool goes on;
 * - CANCELLED: `signal` aborted. `run` rejects at once; the threads see the
 *   shared cancel flag before their next file and stop.
 *
 * Never terminate a chunk thread while it parses (piscina does that for a
 * running task given a `signal`, and in `destroy`): tree-sitter's binding
 * calls into JS during the native parse, and a thread terminated there aborts
 * the whole process (thread.ts has the details). For the same reason a native
 * crash (SIGSEGV) in a thread cannot be contained: threads share the process,
 * and only the queue's stalled-job recovery saves the job.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { JobFailure } from '../../platform/jobs/index.ts';
import type { CodeChunkResult, SourceFile } from '../../shared/index.ts';
import type { ExtractedFile, ExtractOptions } from '../code/extract.ts';
import type { ChunkReply, ChunkTask, ExtractReply, ExtractTask } from './thread.ts';

export interface ChunkPoolOptions {
  /** Threads, all started at once and kept: a thread needs about half a second to load tsx, zod and the grammars. */
  threads: number;
  /**
   * Shards that may wait for a free thread; past it `run` fails with INTERNAL (retryable).
   * @defaultValue unbounded, because the code queue's worker concurrency already bounds the jobs in flight.
   */
  maxQueue?: number;
}

export interface ChunkPool {
  /** Chunks `files` (already validated as CodeChunkInput). Rejects with a `JobFailure`. */
  run(files: readonly SourceFile[], signal?: AbortSignal): Promise<CodeChunkResult>;
  /**
   * The code index's extraction (workers/code/extract.ts: symbols, imports,
   * window-sized chunks), sharded the same way; results in input order.
   */
  extract(files: readonly SourceFile[], options: ExtractOptions, signal?: AbortSignal): Promise<ExtractedFile[]>;
  /**
   * Waits for every shard still queued or on a thread, including those of
   * runs already rejected, then stops the threads. Abort the runs first to
   * hurry it: threads stop at their next file. `run` fails with INTERNAL afterwards.
   */
  close(): Promise<void>;
  readonly threads: number;
}

const defaultThreadFile = new URL('./thread.ts', import.meta.url);

/**
 * Below this many characters per shard, the extra message round trip costs
 * more than the parallelism saves. tree-sitter parses roughly 4 MB/s a thread,
 * so a minimum shard is about 15 ms of work.
 */
const minShardChars = 64 * 1024;

/**
 * Shards per thread. More than one lets a thread that drew the fast files
 * (Python parses quicker than TypeScript per character) take another shard
 * while the others finish.
 */
const shardsPerThread = 2;

const cancelled = (signal: AbortSignal): JobFailure => new JobFailure('CANCELLED', 'code chunking was cancelled', { cause: signal.reason });

/**
 * @param threadFile the thread entry; tests point it at a fault-injecting
 *   thread that speaks the same protocol. Not reachable from a job payload.
 */
export function createChunkPool(opts: ChunkPoolOptions, threadFile: URL = defaultThreadFile): ChunkPool {
  const { threads } = opts;
  const piscina = new Piscina<ChunkTask | ExtractTask, ChunkReply | ExtractReply>({
    filename: threadFile.href,
    minThreads: threads,
    maxThreads: threads,
    ...(opts.maxQueue === undefined ? {} : { maxQueue: opts.maxQueue }),
    // A .ts entry loads only with tsx in the thread. Resolved to a file URL so
    // it does not depend on the process's working directory.
    execArgv: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href],
  });
  // piscina emits 'error' for a thread that fails with no task to reject;
  // unheard, that event would end the process.
  piscina.on('error', (err: Error) => process.emitWarning(err, { code: 'PARLEY_CHUNK_THREAD' }));
  let closed = false;
  // Tasks still on a thread, including those of runs that already rejected
  // (cancelled, or a sibling shard failed): close() must outwait them.
  const onThreads = new Set<Promise<void>>();

  async function runOnThread(task: ChunkTask | ExtractTask): Promise<ChunkReply | ExtractReply> {
    // No `signal` for piscina on purpose: it would terminate a running thread.
    const pending = piscina.run(task);
    const settled = pending.then(
      () => {},
      () => {},
    );
    onThreads.add(settled);
    void settled.then(() => onThreads.delete(settled));
    let reply: ChunkReply | ExtractReply;
    try {
      reply = await pending;
    } catch (cause) {
      throw new JobFailure('INTERNAL', `chunk thread failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    if (!reply.ok) throw new JobFailure(reply.error.code, reply.error.message);
    return reply;
  }

  async function runShard(task: ChunkTask): Promise<CodeChunkResult> {
    return ((await runOnThread(task)) as { result: CodeChunkResult }).result;
  }

  /** Runs one task per shard, all at once; the first failure stops the rest (cancel flag) and is reported. */
  async function runShards<T>(
    shards: number[][],
    signal: AbortSignal | undefined,
    runOne: (indices: number[], cancelFlag: Int32Array) => Promise<T>,
  ): Promise<T[]> {
    const cancelFlag = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
    const settled = Promise.allSettled(
      shards.map((indices) =>
        runOne(indices, cancelFlag).catch((err: unknown) => {
          // The run has failed: the other shards can stop too.
          Atomics.store(cancelFlag, 0, 1);
          throw err;
        }),
      ),
    );
    const aborted = signal ? whenAborted(signal, cancelFlag) : undefined;
    let outcomes: PromiseSettledResult<T>[];
    try {
      outcomes = await (aborted ? Promise.race([settled, aborted.promise]) : settled);
    } finally {
      aborted?.dispose();
    }
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as JobFailure] : []));
    // Report the failure that stopped the run, not the siblings it cancelled.
    const failure = failures.find((f) => f.code !== 'CANCELLED') ?? failures[0];
    if (failure) throw failure;
    return outcomes.map((o) => (o as PromiseFulfilledResult<T>).value);
  }

  return {
    threads,
    async run(files, signal) {
      if (closed) throw new JobFailure('INTERNAL', 'the chunk pool is closed');
      if (signal?.aborted) throw cancelled(signal);
      if (files.length === 0) return { chunks: [], files: [] };
      const shards = shardBySize(files, threads * shardsPerThread);
      const results = await runShards(shards, signal, (indices, cancelFlag) => runShard({ files: indices.map((i) => files[i]!), cancelFlag }));
      return mergeShards(files.length, shards, results);
    },
    async extract(files, options, signal) {
      if (closed) throw new JobFailure('INTERNAL', 'the chunk pool is closed');
      if (signal?.aborted) throw cancelled(signal);
      if (files.length === 0) return [];
      const shards = shardBySize(files, threads * shardsPerThread);
      const results = await runShards(shards, signal, async (indices, cancelFlag) => {
        const reply = await runOnThread({ mode: 'extract', files: indices.map((i) => files[i]!), options, cancelFlag });
        return (reply as { extracted: ExtractedFile[] }).extracted;
      });
      const out = new Array<ExtractedFile>(files.length);
      shards.forEach((indices, s) => indices.forEach((fileIndex, j) => (out[fileIndex] = results[s]![j]!)));
      return out;
    },
    async close() {
      closed = true;
      // piscina 5.3's close() counts task-done events, not idle threads, so
      // short tasks finishing on one thread make it destroy another that is
      // still parsing, which aborts the process: wait for every task first.
      while (onThreads.size > 0) await Promise.all(onThreads);
      await piscina.close();
    },
  };
}

/**
 * Rejects with CANCELLED as soon as `signal` aborts, after raising the
 * threads' cancel flag; `dispose` detaches from a signal that outlives the run.
 */
function whenAborted(signal: AbortSignal, cancelFlag: Int32Array): { promise: Promise<never>; dispose(): void } {
  let onAbort = (): void => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => {
      Atomics.store(cancelFlag, 0, 1);
      reject(cancelled(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * Splits file indices into at most `maxShards` shards of similar total size:
 * largest file first onto the lightest shard. Each shard lists its indices in
 * input order.
 */
function shardBySize(files: readonly SourceFile[], maxShards: number): number[][] {
  const total = files.reduce((sum, f) => sum + f.content.length, 0);
  const count = Math.max(1, Math.min(maxShards, files.length, Math.floor(total / minShardChars)));
  if (count === 1) return [files.map((_, i) => i)];
  const shards: number[][] = Array.from({ length: count }, () => []);
  const loads = new Array<number>(count).fill(0);
  const bySizeDesc = files.map((_, i) => i).sort((a, b) => files[b]!.content.length - files[a]!.content.length);
  for (const i of bySizeDesc) {
    let lightest = 0;
    for (let s = 1; s < count; s++) if (loads[s]! < loads[lightest]!) lightest = s;
    shards[lightest]!.push(i);
    // +1 so that empty files still spread out.
    loads[lightest]! += files[i]!.content.length + 1;
  }
  for (const shard of shards) shard.sort((a, b) => a - b);
  return shards;
}

/** Puts shard results back in input order. A shard's chunks are grouped by file, in its file order. */
function mergeShards(fileCount: number, shards: readonly number[][], results: readonly CodeChunkResult[]): CodeChunkResult {
  if (results.length === 1) return results[0]!;
  const perFile = new Array<{ entry: CodeChunkResult['files'][number]; chunks: CodeChunkResult['chunks'] }>(fileCount);
  shards.forEach((indices, s) => {
    const result = results[s]!;
    let offset = 0;
    indices.forEach((fileIndex, j) => {
      const entry = result.files[j]!;
      perFile[fileIndex] = { entry, chunks: result.chunks.slice(offset, offset + entry.chunks) };
      offset += entry.chunks;
    });
  });
  const merged: CodeChunkResult = { chunks: [], files: [] };
  for (const { entry, chunks } of perFile) {
    merged.files.push(entry);
    for (const chunk of chunks) merged.chunks.push(chunk);
  }
  return merged;
}
