import { z } from 'zod';
import { defineJob } from './define.ts';

/**
 * Indexes one repository: scan the tree (ignore rules), extract and chunk
 * the changed files on the chunk pool, embed the chunks whose content hash
 * no index row of a repository the owner may read has yet, write them to LanceDB one batch per commit, then
 * bring the indexes up to date. Submitted by POST
 * /v1/code/repositories/:id/index, and by the vector maintenance job when an
 * identity change rebuilds every repository into a new generation.
 */
export const CodeIndexInput = z.object({
  repositoryId: z.uuid().toLowerCase(),
  /** The generation to build; absent: the one of the configured model's current identity. */
  generation: z.uuid().toLowerCase().optional(),
});
export type CodeIndexInput = z.infer<typeof CodeIndexInput>;

export const CodeIndexProgress = z.object({
  phase: z.enum(['scanning', 'indexing', 'removing', 'optimizing']),
  filesDone: z.number().int(),
  filesTotal: z.number().int(),
  chunksEmbedded: z.number().int(),
  /**
   * Chunks whose vector was already stored (the same content in this repository or another the owner may
   * read: own, shared with them, public): not embedded again. Other owners' rows are never reused, so
   * this count says nothing about code the owner cannot read.
   */
  chunksReused: z.number().int(),
  /** Seconds left at the current pace; null until there is a pace. */
  etaSeconds: z.number().nullable(),
});
export type CodeIndexProgress = z.infer<typeof CodeIndexProgress>;

export const CodeIndexResult = z.object({
  repositoryId: z.uuid().toLowerCase(),
  generation: z.uuid().toLowerCase(),
  /** Files in the index after this run, and how many of them this run (re)processed. */
  files: z.number().int(),
  filesChanged: z.number().int(),
  filesRemoved: z.number().int(),
  /** Files an earlier attempt of this job had already committed (resumed after a crash). */
  filesResumed: z.number().int(),
  chunks: z.number().int(),
  chunksEmbedded: z.number().int(),
  chunksReused: z.number().int(),
  /** Name-and-signature texts embedded (their second representation); reused likewise by hash, from the same repositories. */
  namesEmbedded: z.number().int(),
  batches: z.number().int(),
  skipped: z.record(z.string(), z.number().int()),
  promoted: z.boolean(),
  durationMs: z.number(),
});
export type CodeIndexResult = z.infer<typeof CodeIndexResult>;

export const codeIndex = defineJob({
  kind: 'code.index',
  v: 1,
  queue: 'code',
  input: CodeIndexInput,
  result: CodeIndexResult,
  progress: CodeIndexProgress,
  defaults: { priority: 'batch', attempts: 3, backoff: { baseMs: 2000, maxMs: 60_000 } },
  metered: false,
  internal: true,
  fansOut: true,
  summary: 'Indexes a code repository incrementally: chunk, embed what changed, write LanceDB, keep its indexes whole.',
});
