import { z } from 'zod';
import { CodeLanguage } from './code-chunk.ts';
import { defineJob } from './define.ts';

/**
 * One batch of a `code.index` job: the child jobs its parent fans out into,
 * one per batch of changed files, so the work spreads over every worker
 * serving the `code-batch` queue and shows in the queue dashboard as the
 * parent's job tree. A batch reads and extracts its files on the chunk pool,
 * embeds the chunks whose content hash no row of the generation has in a
 * repository the owner may read (own, shared with them, public), writes
 * them to LanceDB in one commit, and records the files and their symbols.
 * Only `code.index` submits it.
 */
export const BatchFile = z
  .object({
    path: z.string().min(1).max(4096),
    language: CodeLanguage,
    bytes: z.number().int().nonnegative(),
    /** sha256 of the content the parent scanned, hex. */
    hash: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();
export type BatchFile = z.infer<typeof BatchFile>;

export const CodeBatchInput = z
  .object({
    repositoryId: z.uuid().toLowerCase(),
    generation: z.uuid().toLowerCase(),
    /** The `code.index` job this batch belongs to, and its attempt that planned the batch (runs of one job). */
    parentId: z.uuid().toLowerCase(),
    parentAttempt: z.number().int().positive(),
    /** The batch's place in its parent's plan, counted across the parent's attempts. */
    n: z.number().int().nonnegative(),
    files: z.array(BatchFile).min(1).max(100),
  })
  .strict();
export type CodeBatchInput = z.infer<typeof CodeBatchInput>;

export const CodeBatchProgress = z.object({
  /** Texts (chunks and names) embedded so far, of the batch's texts to embed. */
  embedded: z.number().int(),
  of: z.number().int(),
  /** Of those, chunk texts. */
  chunksEmbedded: z.number().int(),
});
export type CodeBatchProgress = z.infer<typeof CodeBatchProgress>;

export const CodeBatchResult = z.object({
  /** Files committed (a file gone since the parent's scan is left to the next run). */
  files: z.number().int(),
  chunks: z.number().int(),
  chunksEmbedded: z.number().int(),
  /** Chunks whose vector a repository the owner may read already had. */
  chunksReused: z.number().int(),
  namesEmbedded: z.number().int(),
});
export type CodeBatchResult = z.infer<typeof CodeBatchResult>;

export const codeBatch = defineJob({
  kind: 'code.batch',
  v: 1,
  queue: 'code-batch',
  input: CodeBatchInput,
  result: CodeBatchResult,
  progress: CodeBatchProgress,
  defaults: { priority: 'batch', attempts: 3, backoff: { baseMs: 2000, maxMs: 60_000 } },
  metered: false,
  internal: true,
  childOf: 'code',
  summary: 'One batch of a code.index job: extract, embed what no stored row has, write one LanceDB commit, record the files.',
});
