import { z } from 'zod';
import { Usage } from '../usage.ts';
import { defineJob } from './define.ts';

/** Condenses a room's turns 1..upToTurn into its rolling summary (kept in MongoDB). */
export const DiscussionSummarizeInput = z.object({
  discussionId: z.uuid().toLowerCase(),
  upToTurn: z.number().int().min(1),
  /** Target length of the summary, in estimated tokens. */
  maxTokens: z.number().int().min(16).max(4096),
});
export type DiscussionSummarizeInput = z.infer<typeof DiscussionSummarizeInput>;

export const DiscussionSummarizeResult = z.object({
  discussionId: z.uuid().toLowerCase(),
  upToTurn: z.number().int(),
  /** False when a summary at or beyond upToTurn already existed. */
  written: z.boolean(),
  chars: z.number().int(),
  usage: Usage.nullable(),
});
export type DiscussionSummarizeResult = z.infer<typeof DiscussionSummarizeResult>;

export const discussionSummarize = defineJob({
  kind: 'discussion.summarize',
  v: 1,
  queue: 'llm',
  input: DiscussionSummarizeInput,
  result: DiscussionSummarizeResult,
  progress: z.object({ tokens: z.number().int() }),
  defaults: { priority: 'normal', attempts: 3, backoff: { baseMs: 1000, maxMs: 15_000 } },
  metered: true,
  internal: true,
  clientRetry: false,
  summary: "Condenses a discussion's older turns into its rolling summary.",
});
