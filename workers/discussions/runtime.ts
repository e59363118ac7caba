/**
 * What the discussion handlers and the watchdog share: the room state
 * machine's dependencies plus transcripts, short-term memory, the Ollama
 * client and the context defaults. Built once in workers/main.ts.
 */
import type { BudgetGuards } from '../../platform/usage/index.ts';
import type { RoomDeps } from '../../platform/discussions/index.ts';
import type { RoomMemory } from '../../platform/discussions/index.ts';
import type { DiscussionRow, RoomMember } from '../../platform/discussions/index.ts';
import type { Transcripts } from '../../platform/discussions/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { MemoryNote } from './context.ts';

/**
 * Long-term memory for one agent in one room: notes, each with who said it
 * and where, that the context assembler quotes in a user message of their
 * own before the timeline (within a quarter of the remaining budget), never
 * in the system prompt. workers/knowledge/memory.ts implements it over the
 * knowledge index; unset → no memories.
 *
 * The speaker's long-term memories for a turn, best first; `recent` is the latest text in the room (the last turn or message), empty at the start.
 */
export type LongTermMemory = (room: DiscussionRow, agent: RoomMember, recent?: string) => Promise<MemoryNote[]>;

/** A turn as committed, for whoever keeps the transcript beyond the room (knowledge). */
export interface CommittedTurn {
  turn: number;
  agentId: string;
  agentName: string;
  text: string;
}

/** Called after a turn commits; must not throw (the turn is already committed). */
export type TranscriptFeed = (room: DiscussionRow, turn: CommittedTurn) => Promise<void>;

export interface DiscussionRuntime extends RoomDeps {
  transcripts: Transcripts;
  memory: RoomMemory;
  ollama: OllamaClient;
  defaults: {
    /** Context window assumed when an agent sets no num_ctx. @defaultValue 2048 (Ollama's default for small models) */
    numCtx: number;
    /** Tokens a turn may generate when the agent sets no num_predict. */
    numPredict: number;
    /** The model that writes rolling summaries. */
    summaryModel: string;
  };
  longTermMemory?: LongTermMemory;
  /** Committed turns to knowledge (workers/knowledge/transcripts.ts); none → transcripts stay in the room only. */
  feedTranscript?: TranscriptFeed;
  /** The owners' token budgets, checked while a turn streams (as for llm.chat); none → unbounded. */
  budget?: BudgetGuards;
}
