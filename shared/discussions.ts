/**
 * The discussion arena's contracts: agents, rooms (discussions), the
 * transcript and the room event catalog. The API validates with these, the
 * worker builds turn documents of this shape, and clients take their types.
 *
 * A room's live events travel in one Redis Stream per room with a room-level
 * `seq` that strictly increases whoever writes (the API for human messages
 * and status changes, workers for turns): see platform/streams/room-stream.ts.
 */
import { z } from 'zod';
import { nonBlank } from './params.ts';
import { JobError } from './errors.ts';
import { ModelName } from './model-name.ts';
import { ChatMessage, OllamaOptions } from './ollama-options.ts';
import { Usage } from './usage.ts';

// ── Agents ──────────────────────────────────────────────────────────────────

/** Shown in transcripts and used by the moderator to name the next speaker. */
/**
 * Stored in Unicode NFC, so "José" typed precomposed or decomposed is one name. Combining marks may follow
 * the first character: scripts such as Devanagari cannot write a name without them (दीपा).
 */
export const AgentName = z
  .string()
  .trim()
  .normalize('NFC')
  .max(40)
  .regex(/^[\p{L}\p{N}][\p{L}\p{M}\p{N} _.'-]*$/u, "letters (with their accents and marks), digits, spaces and _ . ' - only");

export const AgentInput = z
  .object({
    name: AgentName,
    /** The system prompt: who the agent is and how it argues. */
    persona: nonBlank(8000),
    /** Defaults to the configured chat model. */
    model: ModelName.optional(),
    /** Generation parameters, in Ollama's names; role caps apply on create and update. */
    params: OllamaOptions.default({}),
  })
  .strict();
export type AgentInput = z.infer<typeof AgentInput>;

export const AgentPatch = z
  .object({
    name: AgentName.optional(),
    persona: nonBlank(8000).optional(),
    model: ModelName.optional(),
    params: OllamaOptions.optional(),
  })
  .strict();
export type AgentPatch = z.infer<typeof AgentPatch>;

export const Agent = z.object({
  id: z.uuid().toLowerCase(),
  owner: z.uuid().toLowerCase(),
  name: z.string(),
  persona: z.string(),
  model: z.string(),
  params: OllamaOptions,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type Agent = z.infer<typeof Agent>;

export const AgentList = z.object({ items: z.array(Agent) });
export type AgentList = z.infer<typeof AgentList>;

// ── Rooms ───────────────────────────────────────────────────────────────────

/**
 * Who speaks next. `round_robin`: the agents in their listed order.
 * `moderator`: before each turn the moderator agent names the next speaker
 * (and may declare consensus); an invalid answer falls back to round-robin.
 */
export const TurnPolicy = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('round_robin') }).strict(),
  z.object({ kind: z.literal('moderator'), moderatorId: z.uuid().toLowerCase() }).strict(),
]);
export type TurnPolicy = z.infer<typeof TurnPolicy>;

export const DiscussionPolicy = z
  .object({
    turns: TurnPolicy.default({ kind: 'round_robin' }),
    /** The room finishes after this many turns. @defaultValue 6 */
    maxTurns: z.number().int().min(1).max(200).default(6),
    /** The room finishes once its turns used this many tokens (prompt + completion). */
    tokenBudget: z.number().int().min(1).max(100_000_000).optional(),
    /** The room finishes when a turn contains this text (case-insensitive). */
    consensusMarker: nonBlank(64).optional(),
    /**
     * Prompt budget per turn, in (estimated) tokens; also bounded by the
     * speaker's context window minus its num_predict. Older turns beyond it
     * are condensed by the summarisation job. @defaultValue 1536
     */
    contextTokens: z.number().int().min(160).max(131_072).default(1536),
  })
  .strict();
export type DiscussionPolicy = z.infer<typeof DiscussionPolicy>;

/** private: owner only; shared: owner and `sharedWith`; public: any signed-in user may read. */
export const Visibility = z.enum(['private', 'shared', 'public']);
export type Visibility = z.infer<typeof Visibility>;

/** draft → running ⇄ paused → finished | stopped. finished and stopped are final. */
export const RoomStatus = z.enum(['draft', 'running', 'paused', 'stopped', 'finished']);
export type RoomStatus = z.infer<typeof RoomStatus>;
export const closedStatuses: readonly RoomStatus[] = ['finished', 'stopped'];
export const isClosed = (s: RoomStatus): boolean => closedStatuses.includes(s);

export const CreateDiscussion = z
  .object({
    topic: nonBlank(2000),
    /** Speakers, in round-robin order. */
    agentIds: z
      .array(z.uuid().toLowerCase())
      .min(2)
      .max(8)
      .refine((ids) => new Set(ids).size === ids.length, 'must not repeat an agent')
      .meta({ uniqueItems: true }),
    policy: DiscussionPolicy.default({ turns: { kind: 'round_robin' }, maxTurns: 6, contextTokens: 1536 }),
    visibility: Visibility.default('private'),
    /** User ids that may read and post when visibility is `shared`. */
    sharedWith: z.array(z.uuid().toLowerCase()).max(100).default([]),
  })
  .strict();
export type CreateDiscussion = z.infer<typeof CreateDiscussion>;

/** Replaces parts of an agent inside one room (a fork's divergence); the agent itself is untouched. */
export const AgentOverride = z
  .object({
    agentId: z.uuid().toLowerCase(),
    model: ModelName.optional(),
    persona: nonBlank(8000).optional(),
    params: OllamaOptions.optional(),
  })
  .strict();
export type AgentOverride = z.infer<typeof AgentOverride>;

export const ForkRequest = z
  .object({
    /** Turns 1..fromTurn are copied; the fork continues with fromTurn + 1. 0 copies nothing. At most a room's longest run (maxTurns ≤ 200). */
    fromTurn: z.number().int().min(0).max(200),
    /** One per agent at most: a repeated agentId is refused at its second mention, as create refuses a repeated agent. */
    overrides: z
      .array(AgentOverride)
      .max(8)
      .superRefine((os, ctx) => {
        os.forEach((o, i) => {
          if (os.findIndex((x) => x.agentId === o.agentId) < i)
            ctx.addIssue({ code: 'custom', path: [i, 'agentId'], message: 'must not repeat an agent: one override per agent', input: o.agentId });
        });
      })
      .default([]),
    maxTurns: z.number().int().min(1).max(200).optional(),
    visibility: Visibility.default('private'),
  })
  .strict();
export type ForkRequest = z.infer<typeof ForkRequest>;

/** An agent as it acts in one room: the agent with the room's overrides applied. */
export const RoomAgent = z.object({
  id: z.uuid().toLowerCase(),
  name: z.string(),
  model: z.string(),
  persona: z.string(),
  params: OllamaOptions,
  overridden: z.boolean(),
});
export type RoomAgent = z.infer<typeof RoomAgent>;

export const Lineage = z.object({ parentId: z.uuid().toLowerCase(), forkTurn: z.number().int() });
export type Lineage = z.infer<typeof Lineage>;

export const Discussion = z.object({
  id: z.uuid().toLowerCase(),
  owner: z.uuid().toLowerCase(),
  topic: z.string(),
  agents: z.array(RoomAgent),
  moderator: RoomAgent.nullable(),
  policy: DiscussionPolicy,
  visibility: Visibility,
  sharedWith: z.array(z.uuid().toLowerCase()),
  status: RoomStatus,
  /** Why the room paused, stopped or finished (e.g. "turn 3 failed: ..."). */
  statusReason: z.string().nullable(),
  /** The latest turn claimed: being spoken when `speaking`, else committed. */
  turn: z.number().int(),
  speaking: z.boolean(),
  tokensUsed: z.number().int(),
  lineage: Lineage.nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  links: z.object({ self: z.string(), events: z.string(), transcript: z.string(), socketRoom: z.string() }),
});
export type Discussion = z.infer<typeof Discussion>;

export const ListDiscussionsQuery = z.object({
  status: RoomStatus.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});
export type ListDiscussionsQuery = z.infer<typeof ListDiscussionsQuery>;

export const DiscussionList = z.object({ items: z.array(Discussion), nextCursor: z.string().nullable() });
export type DiscussionList = z.infer<typeof DiscussionList>;

// ── Transcript (MongoDB documents) ─────────────────────────────────────────

export const TurnStatus = z.enum(['completed', 'interrupted', 'failed']);
export type TurnStatus = z.infer<typeof TurnStatus>;

/** How a turn's prompt was put together; `estimatedTokens` never exceeds `budget`. */
export const ContextStats = z.object({
  estimatedTokens: z.number().int(),
  budget: z.number().int(),
  summaryUpToTurn: z.number().int(),
  verbatimTurns: z.number().int(),
  droppedTurns: z.number().int(),
  humanMessages: z.number().int(),
  longTermMemory: z.number().int(),
  /** The knowledge items those memories are (`GET /v1/knowledge/items/:id/links`); absent in turns recorded before it was kept. */
  memoryItems: z.array(z.string()).default([]),
});
export type ContextStats = z.infer<typeof ContextStats>;

/** One document per turn, unique on (discussionId, turn). */
export const Turn = z.object({
  discussionId: z.uuid().toLowerCase(),
  turn: z.number().int().min(1),
  agentId: z.uuid().toLowerCase(),
  agentName: z.string(),
  model: z.string(),
  text: z.string(),
  status: TurnStatus,
  usage: Usage.nullable(),
  timings: z.object({ startedAt: z.iso.datetime(), firstTokenMs: z.number().nullable(), totalMs: z.number() }),
  /** The room seq of this turn's `turn_started`: orders turns and human messages in one timeline. */
  startedSeq: z.number().int(),
  attempt: z.number().int(),
  jobId: z.uuid().toLowerCase().nullable(),
  context: ContextStats.nullable(),
  /** The exact messages sent to the model; in transcripts only with `?prompts=true`. */
  prompt: z.array(ChatMessage).optional(),
  /** Set on turns a fork copied from its parent. */
  copiedFrom: z.object({ discussionId: z.uuid().toLowerCase(), turn: z.number().int() }).nullable(),
  /** The moderator's choice, under the moderator policy. */
  pickedBy: z.enum(['round_robin', 'moderator', 'fallback']),
  /** What asking the moderator for this turn's speaker consumed (null without a moderator call). */
  moderatorUsage: Usage.nullable(),
  error: JobError.nullable(),
  createdAt: z.iso.datetime(),
});
export type Turn = z.infer<typeof Turn>;

export const PostHumanMessage = z.object({ text: nonBlank(4000) }).strict();
export type PostHumanMessage = z.infer<typeof PostHumanMessage>;

/** A person's message in a room; it joins the context of every turn that starts after it. */
export const HumanMessage = z.object({
  id: z.uuid().toLowerCase(),
  discussionId: z.uuid().toLowerCase(),
  seq: z.number().int(),
  authorId: z.uuid().toLowerCase(),
  authorName: z.string(),
  text: z.string(),
  createdAt: z.iso.datetime(),
});
export type HumanMessage = z.infer<typeof HumanMessage>;

export const Summary = z.object({
  discussionId: z.uuid().toLowerCase(),
  /** Turns 1..upToTurn (and the human messages before turn upToTurn + 1) are condensed here. */
  upToTurn: z.number().int(),
  /** Timeline entries with seq below this are covered. */
  coversSeq: z.number().int(),
  text: z.string(),
  model: z.string(),
  usage: Usage.nullable(),
  createdAt: z.iso.datetime(),
});
export type Summary = z.infer<typeof Summary>;

export const TranscriptQuery = z.object({
  prompts: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});

export const Transcript = z.object({
  discussionId: z.uuid().toLowerCase(),
  status: RoomStatus,
  lineage: Lineage.nullable(),
  turns: z.array(Turn),
  messages: z.array(HumanMessage),
  summary: Summary.nullable(),
});
export type Transcript = z.infer<typeof Transcript>;

const CompareCell = Turn.pick({ agentId: true, agentName: true, model: true, text: true, status: true, usage: true, copiedFrom: true });

/** Two transcripts side by side, aligned on turn numbers. */
export const Comparison = z.object({
  left: z.object({ id: z.uuid().toLowerCase(), topic: z.string(), status: RoomStatus, lineage: Lineage.nullable() }),
  right: z.object({ id: z.uuid().toLowerCase(), topic: z.string(), status: RoomStatus, lineage: Lineage.nullable() }),
  /** The nearest room both descend from (one of the two, when one is the other's fork). */
  commonAncestor: z.uuid().toLowerCase().nullable(),
  /** Turns up to this one are shared history; null when the rooms are unrelated. */
  divergesAfterTurn: z.number().int().nullable(),
  rows: z.array(z.object({ turn: z.number().int(), left: CompareCell.nullable(), right: CompareCell.nullable(), same: z.boolean() })),
});
export type Comparison = z.infer<typeof Comparison>;

// ── Room events (SSE and Socket.IO) ─────────────────────────────────────────
//
// Every room event carries `seq` (room-level, strictly increasing, no gaps)
// and `attempt` (the turn job's execution attempt; 0 for events the API
// writes). A `turn_started` for a turn already in progress means the turn
// restarted after a failed attempt: drop the text shown for it so far.
// SSE frames: `id: <seq>`, `event: <name>`, `data: <json>`.
// Socket.IO: server→client `<name>` with `{ room: "discussion:<id>", ...data }`.

const RoomEventBase = { seq: z.number().int(), attempt: z.number().int() };

export const TurnStartedEvent = z.object({
  ...RoomEventBase,
  turn: z.number().int(),
  agentId: z.uuid().toLowerCase(),
  agentName: z.string(),
  model: z.string(),
  /** True for turns a fork replays from its parent's transcript. */
  copied: z.boolean().optional(),
});
export const RoomTokensEvent = z.object({ ...RoomEventBase, turn: z.number().int(), agentId: z.uuid().toLowerCase(), text: z.string() });
export const TurnFinishedEvent = z.object({
  ...RoomEventBase,
  turn: z.number().int(),
  agentId: z.uuid().toLowerCase(),
  status: TurnStatus,
  usage: Usage.nullable(),
  error: JobError.optional(),
});
export const RoomStatusEvent = z.object({ ...RoomEventBase, status: RoomStatus, reason: z.string().optional() });
export const HumanMessageEvent = z.object({
  ...RoomEventBase,
  id: z.uuid().toLowerCase(),
  authorId: z.uuid().toLowerCase(),
  authorName: z.string(),
  text: z.string(),
});
/** For a viewer asking for seqs the stream no longer keeps (trimmed, or a closed room's expired stream): the transcript standing in for them (docs/discussions.md). */
export const RoomSnapshotEvent = z.object({ ...RoomEventBase, status: RoomStatus, turns: z.array(Turn), messages: z.array(HumanMessage) });

export const roomEvents = {
  turn_started: TurnStartedEvent,
  tokens: RoomTokensEvent,
  turn_finished: TurnFinishedEvent,
  status: RoomStatusEvent,
  human_message: HumanMessageEvent,
  snapshot: RoomSnapshotEvent,
} as const;
export type RoomEventName = keyof typeof roomEvents;
export type RoomEvent = { [K in RoomEventName]: { event: K; data: z.infer<(typeof roomEvents)[K]> } }[RoomEventName];
/** A room event's payload as written, before the stream assigns `seq` and `attempt`. */
export type RoomEventPayload<K extends RoomEventName> = Omit<z.infer<(typeof roomEvents)[K]>, 'seq' | 'attempt'>;
