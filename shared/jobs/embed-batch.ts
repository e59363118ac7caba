import { z } from 'zod';
import { Usage } from '../usage.ts';
import { ModelName } from '../model-name.ts';
import { defineJob } from './define.ts';

export const EmbedBatchInput = z
  .object({
    /** Defaults to the configured embedding model. */
    model: ModelName.optional(),
    texts: z.array(z.string().min(1).max(32_000)).min(1).max(2048),
    /** Texts per upstream /api/embed call. */
    batchSize: z.number().int().min(1).max(256).default(32),
    /** Response cache (docs/caching.md): `bypass` embeds every text upstream and stores nothing. @defaultValue 'default' */
    cache: z.enum(['default', 'bypass']).optional(),
  })
  .strict();
export type EmbedBatchInput = z.infer<typeof EmbedBatchInput>;

export const EmbedBatchResult = z.object({
  model: z.string(),
  dimensions: z.number().int(),
  embeddings: z.array(z.array(z.number())),
  usage: Usage,
  /** How many of the vectors came from the response cache (their texts used no compute: `usage` counts the rest). */
  cacheHits: z.number().int().min(0).optional(),
});
export type EmbedBatchResult = z.infer<typeof EmbedBatchResult>;

export const EmbedBatchProgress = z.object({ done: z.number().int(), total: z.number().int() });

export const embedBatch = defineJob({
  kind: 'embed.batch',
  v: 1,
  queue: 'embed',
  input: EmbedBatchInput,
  result: EmbedBatchResult,
  progress: EmbedBatchProgress,
  defaults: { priority: 'normal', attempts: 3, streamRetentionS: 600, backoff: { baseMs: 500, maxMs: 15_000 } },
  metered: true,
  summary: "Texts to vectors with Ollama's /api/embed, in batches.",
});
