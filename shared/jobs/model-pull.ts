import { z } from 'zod';
import { ModelName } from '../model-name.ts';
import { defineJob } from './define.ts';

export const ModelPullInput = z.object({
  /** In canonical form (shared/model-name.ts), so equal pulls deduplicate. */
  model: ModelName,
  insecure: z.boolean().default(false),
});
export type ModelPullInput = z.infer<typeof ModelPullInput>;

/** Bytes over all layers Ollama reported so far; `percent` is 0 until a size is known. */
export const ModelPullProgress = z.object({
  status: z.string(),
  completedBytes: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
  percent: z.number().min(0).max(100),
});
export type ModelPullProgress = z.infer<typeof ModelPullProgress>;

export const ModelPullResult = z.object({
  model: z.string(),
  status: z.string(),
  /** Bytes over all layers and hosts. */
  totalBytes: z.number().int().nonnegative(),
  durationMs: z.number(),
  /** Every Ollama host the model was pulled into, each with Ollama's last status there. */
  hosts: z.array(z.object({ host: z.string(), status: z.string() })),
});
export type ModelPullResult = z.infer<typeof ModelPullResult>;

export const modelPull = defineJob({
  kind: 'model.pull',
  v: 1,
  queue: 'models',
  input: ModelPullInput,
  result: ModelPullResult,
  progress: ModelPullProgress,
  // One quick retry for a registry blip; a deterministic failure (unknown model) is not retried.
  defaults: { priority: 'normal', attempts: 2, backoff: { baseMs: 2000, maxMs: 30_000 } },
  metered: false,
  // Only POST /v1/models/pull enqueues it (models:manage, deduplicated per model); POST /v1/jobs refuses it.
  internal: true,
  summary: 'Downloads a model into every Ollama host from its registry (/api/pull), reporting bytes as progress.',
});
