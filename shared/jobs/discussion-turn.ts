import { z } from 'zod';
import { Usage } from '../usage.ts';
import { defineJob } from './define.ts';

/**
 * One turn of one room. Only the platform enqueues it (internal), with a
 * deterministic id per (discussion, turn, run), so scheduling is idempotent.
 * `run` counts the room's (re)starts: a resume schedules under a new run, and
 * a job of an older run finds the room moved on and skips.
 */
export const DiscussionTurnInput = z.object({
  discussionId: z.uuid().toLowerCase(),
  turn: z.number().int().min(1),
  run: z.number().int().min(0),
});
export type DiscussionTurnInput = z.infer<typeof DiscussionTurnInput>;

export const DiscussionTurnResult = z.object({
  discussionId: z.uuid().toLowerCase(),
  turn: z.number().int(),
  /** spoke: a turn was committed; finished: the moderator ended the room instead; skipped: the room had moved on. */
  outcome: z.enum(['spoke', 'finished', 'skipped']),
  agentId: z.uuid().toLowerCase().nullable(),
  text: z.string().optional(),
  reason: z.string().optional(),
  usage: Usage.nullable(),
});
export type DiscussionTurnResult = z.infer<typeof DiscussionTurnResult>;

export const discussionTurn = defineJob({
  kind: 'discussion.turn',
  v: 1,
  queue: 'llm',
  input: DiscussionTurnInput,
  result: DiscussionTurnResult,
  progress: z.object({ tokens: z.number().int() }),
  defaults: { priority: 'interactive', attempts: 3, backoff: { baseMs: 500, maxMs: 10_000 } },
  metered: true,
  internal: true,
  clientRetry: false,
  summary: 'One speaker turn of a discussion room: context assembly, streamed generation, commit, next turn.',
});
