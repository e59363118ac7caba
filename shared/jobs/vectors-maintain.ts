import { z } from 'zod';
import { defineJob } from './define.ts';

/**
 * Housekeeping of the vector store, scheduled every
 * PARLEY_VECTORS_MAINTAIN_INTERVAL_S: `optimize()` every live table
 * (compaction, index updates, old versions removed), start rebuilding the
 * code index when the configured identity (model, digest, chunker) changed
 * and promote the new generation once complete, drop retired generations'
 * tables after their grace period and tables nothing references, and purge
 * knowledge items soft-expired for longer than PARLEY_KNOWLEDGE_PURGE_GRACE_S.
 */
export const VectorsMaintainInput = z.object({
  /** The scheduling period it belongs to (one job per period). */
  period: z.number().int().optional(),
});

export const VectorsMaintainResult = z.object({
  tables: z.array(
    z.object({
      name: z.string(),
      rows: z.number().int(),
      versionsRemoved: z.number().int(),
      bytesRemoved: z.number(),
      created: z.array(z.string()),
      durationMs: z.number(),
    }),
  ),
  rebuild: z.object({ generation: z.uuid().toLowerCase(), scheduled: z.number().int(), promoted: z.boolean() }).nullable(),
  dropped: z.array(z.string()),
  /** Rows of code repositories deleted since they were written (a batch that committed while its repository was deleted, then died), removed. */
  orphanRows: z.number().int().default(0),
  /** Knowledge items purged after their expiry and grace; the knowledge table is maintained with the others. */
  knowledge: z.object({ purged: z.number().int(), table: z.string().nullable() }).nullable().default(null),
  /**
   * Knowledge's generations: items copied into a generation being built (then promoted) or into a
   * serving one from a retired one still on disk, and removed or rewritten there because the source
   * changed during the copy.
   */
  knowledgeRebuild: z
    .object({
      copied: z.number().int(),
      deleted: z.number().int(),
      rewritten: z.number().int(),
      promoted: z.uuid().toLowerCase().nullable(),
    })
    .nullable()
    .default(null),
});

export const vectorsMaintain = defineJob({
  kind: 'vectors.maintain',
  v: 1,
  queue: 'system',
  input: VectorsMaintainInput,
  result: VectorsMaintainResult,
  progress: z.object({ table: z.string() }),
  defaults: { priority: 'batch', attempts: 2, backoff: { baseMs: 5000, maxMs: 60_000 } },
  metered: false,
  internal: true,
  summary: 'Vector store housekeeping: optimize tables, rebuild and switch index generations, drop retired ones.',
});
