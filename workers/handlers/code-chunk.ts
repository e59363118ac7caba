/**
 * code.chunk: files go to the tree-sitter chunker on the piscina pool
 * (workers/chunking/pool.ts) in slices of about `sliceBytes`, so progress
 * moves and a cancel lands between slices; errors come back from the
 * threads as data (JobFailure), never as thrown classes.
 */
import type { codeChunk, CodeChunkResult, SourceFile } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';

/** The slice of the chunking pool this handler needs (workers/chunking/pool.ts). */
export interface ChunkRunner {
  run(files: SourceFile[], signal?: AbortSignal): Promise<CodeChunkResult>;
}

/** Files go to the pool in slices, so progress moves and a cancel lands between slices. */
export function codeChunkHandler(deps: { pool: ChunkRunner; sliceBytes?: number }): Handler<typeof codeChunk> {
  const sliceBytes = deps.sliceBytes ?? 512 * 1024;
  return async (input, ctx) => {
    const slices: SourceFile[][] = [];
    let current: SourceFile[] = [];
    let size = 0;
    for (const f of input.files) {
      if (current.length && size + f.content.length > sliceBytes) {
        slices.push(current);
        current = [];
        size = 0;
      }
      current.push(f);
      size += f.content.length;
    }
    if (current.length) slices.push(current);
    let done = 0;
    const parts = await Promise.all(
      slices.map(async (slice) => {
        const r = await deps.pool.run(slice, ctx.signal);
        done += slice.length;
        ctx.progress({ done, total: input.files.length });
        return r;
      }),
    );
    const result: CodeChunkResult = { chunks: parts.flatMap((p) => p.chunks), files: parts.flatMap((p) => p.files) };
    return result;
  };
}
