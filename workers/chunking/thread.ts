/**
 * Piscina thread entry for the code.chunk pool (pool.ts starts it).
 *
 * Message protocol, one task = one message each way, by structured clone:
 *   in:  ChunkTask  = { files: SourceFile[]               1..500 files, as CodeChunkInput
 *                     , cancelFlag?: Int32Array }          length 1, over a SharedArrayBuffer; the pool
 *                                                          stores 1 to cancel, the thread only reads it
 *      | ExtractTask = { mode: 'extract', files: SourceFile[], cancelFlag?,
 *                       options: { maxTokens, tokenizer } } for the code index (workers/code/extract.ts):
 *                                                          tokenizer = { kind: 'wordpiece', id, vocab[] }
 *                                                          | { kind: 'estimate', charsPerToken }
 *   out: ChunkReply = { ok: true,  result: CodeChunkResult }
 *                   | { ok: true,  extracted: ExtractedFile[] }                  an ExtractTask's answer, in file order
 *                   | { ok: false, error: { code: 'HANDLER_FAILED', message } }  the task is invalid; retrying cannot help
 *                   | { ok: false, error: { code: 'INTERNAL', message } }        a bug in the chunker; treated as transient
 *                   | { ok: false, error: { code: 'CANCELLED', message } }       cancelFlag was set; nobody waits for this reply
 *
 * The function never throws. A class thrown across worker_threads arrives as
 * a plain Error without its `code`, so failures travel as data and pool.ts
 * turns them back into errors. A file the chunker cannot handle (unknown
 * language, unparsable) is not a failure: it is reported in
 * `result.files[i].error` and the other files go on.
 *
 * Why a flag instead of terminating the thread: tree-sitter's node binding
 * reads the source through a JS callback during the native parse, and a
 * thread terminated inside it throws a C++ exception through C frames, which
 * aborts the whole process. So cancellation is checked between files, and a
 * thread is never stopped mid-task.
 *
 * A thread that dies mid-task (process.exit, an uncaught exception) sends no
 * reply at all; piscina rejects that task and pool.ts reports it as INTERNAL.
 */
import { z } from 'zod';
import { CodeChunkInput, SourceFile, type CodeChunkResult } from '../../shared/index.ts';
import { extractSource, type ExtractedFile, type ExtractOptions } from '../code/extract.ts';
import { appendFileChunks, chunkSource } from './chunker.ts';

export type ChunkTask = CodeChunkInput & { cancelFlag?: Int32Array };
export type ExtractTask = { mode: 'extract'; files: SourceFile[]; options: ExtractOptions; cancelFlag?: Int32Array };

export type ChunkReplyError = { code: 'HANDLER_FAILED' | 'INTERNAL' | 'CANCELLED'; message: string };

export type ChunkReply = { ok: true; result: CodeChunkResult } | { ok: false; error: ChunkReplyError };
export type ExtractReply = { ok: true; extracted: ExtractedFile[] } | { ok: false; error: ChunkReplyError };

const CancelFlag = z.custom<Int32Array>((v) => v instanceof Int32Array && v.length === 1 && v.buffer instanceof SharedArrayBuffer, {
  message: 'cancelFlag must be an Int32Array(1) over a SharedArrayBuffer',
});

// The pool only sends what the job's schema accepted, but this is a thread
// boundary: check it here rather than fail somewhere inside the walk.
const ChunkTask = CodeChunkInput.extend({ cancelFlag: CancelFlag.optional() });
const ExtractTask = z.object({
  mode: z.literal('extract'),
  // The code index's files: bounded by PARLEY_CODE_MAX_FILE_BYTES at the scan (1 MiB by default, above a
  // code.chunk job's 512 KiB per file), so only a sanity bound here.
  files: z.array(SourceFile.extend({ content: z.string().max(64 * 1024 * 1024) })).min(1),
  cancelFlag: CancelFlag.optional(),
  options: z.object({
    maxTokens: z.number().int().min(16).max(100_000),
    tokenizer: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('wordpiece'), id: z.string().min(1), vocab: z.array(z.string()).min(1) }),
      z.object({ kind: z.literal('estimate'), charsPerToken: z.number().positive() }),
    ]),
  }),
});

export default function runChunkTask(task: unknown): ChunkReply | ExtractReply {
  if (typeof task === 'object' && task !== null && (task as { mode?: unknown }).mode === 'extract') return runExtractTask(task);
  return runChunkOnly(task);
}

function runExtractTask(task: unknown): ExtractReply {
  const parsed = ExtractTask.safeParse(task);
  if (!parsed.success) return { ok: false, error: { code: 'HANDLER_FAILED', message: `invalid extract task: ${z.prettifyError(parsed.error)}` } };
  const { files, cancelFlag, options } = parsed.data;
  try {
    const extracted: ExtractedFile[] = [];
    for (const [i, file] of files.entries()) {
      if (cancelFlag && Atomics.load(cancelFlag, 0) !== 0) {
        return { ok: false, error: { code: 'CANCELLED', message: `cancelled after ${i} of ${files.length} files` } };
      }
      extracted.push(extractSource(file, options));
    }
    return { ok: true, extracted };
  } catch (err) {
    return { ok: false, error: { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) } };
  }
}

function runChunkOnly(task: unknown): ChunkReply {
  const parsed = ChunkTask.safeParse(task);
  if (!parsed.success) return { ok: false, error: { code: 'HANDLER_FAILED', message: `invalid chunk task: ${z.prettifyError(parsed.error)}` } };
  const { files, cancelFlag } = parsed.data;
  try {
    const result: CodeChunkResult = { chunks: [], files: [] };
    for (const [i, file] of files.entries()) {
      if (cancelFlag && Atomics.load(cancelFlag, 0) !== 0) {
        return { ok: false, error: { code: 'CANCELLED', message: `cancelled after ${i} of ${files.length} files` } };
      }
      appendFileChunks(result, chunkSource(file));
    }
    return { ok: true, result };
  } catch (err) {
    return { ok: false, error: { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) } };
  }
}
