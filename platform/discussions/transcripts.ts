/**
 * Transcripts in MongoDB: one document per turn, the human messages, and
 * the rolling summaries.
 *
 *   discussion_turns      unique (discussionId, turn); written with an upsert,
 *                         so a turn retried after a crash still has one record
 *   discussion_messages   unique (discussionId, seq)
 *   discussion_summaries  unique (discussionId, upToTurn); the newest covers most
 *
 * Documents hold Dates; `toTurn` / `toMessage` / `toSummary` give the
 * shared (JSON) shapes.
 */
import type { Collection } from 'mongodb';
import type { ChatMessage, ContextStats, HumanMessage, JobError, Summary, Turn, TurnStatus, Usage } from '../../shared/index.ts';
import type { Mongo } from '../connections/index.ts';

export interface TurnDoc {
  discussionId: string;
  turn: number;
  agentId: string;
  agentName: string;
  model: string;
  text: string;
  status: TurnStatus;
  usage: Usage | null;
  timings: { startedAt: Date; firstTokenMs: number | null; totalMs: number };
  startedSeq: number;
  attempt: number;
  jobId: string | null;
  context: ContextStats | null;
  prompt: ChatMessage[];
  copiedFrom: { discussionId: string; turn: number } | null;
  pickedBy: Turn['pickedBy'];
  moderatorUsage?: Usage | null;
  error: JobError | null;
  createdAt: Date;
}

export interface MessageDoc {
  id: string;
  discussionId: string;
  seq: number;
  authorId: string;
  authorName: string;
  text: string;
  createdAt: Date;
}

export interface SummaryDoc {
  discussionId: string;
  upToTurn: number;
  coversSeq: number;
  text: string;
  model: string;
  usage: Usage | null;
  createdAt: Date;
}

export function toTurn(d: TurnDoc, opts: { prompt?: boolean } = {}): Turn {
  return {
    discussionId: d.discussionId,
    turn: d.turn,
    agentId: d.agentId,
    agentName: d.agentName,
    model: d.model,
    text: d.text,
    status: d.status,
    usage: d.usage ?? null,
    timings: { startedAt: d.timings.startedAt.toISOString(), firstTokenMs: d.timings.firstTokenMs, totalMs: d.timings.totalMs },
    startedSeq: d.startedSeq,
    attempt: d.attempt,
    jobId: d.jobId,
    context: d.context ?? null,
    ...(opts.prompt ? { prompt: d.prompt ?? [] } : {}),
    copiedFrom: d.copiedFrom ?? null,
    pickedBy: d.pickedBy,
    moderatorUsage: d.moderatorUsage ?? null,
    error: d.error ?? null,
    createdAt: d.createdAt.toISOString(),
  };
}

export function toMessage(d: MessageDoc): HumanMessage {
  return {
    id: d.id,
    discussionId: d.discussionId,
    seq: d.seq,
    authorId: d.authorId,
    authorName: d.authorName,
    text: d.text,
    createdAt: d.createdAt.toISOString(),
  };
}

export function toSummary(d: SummaryDoc): Summary {
  return {
    discussionId: d.discussionId,
    upToTurn: d.upToTurn,
    coversSeq: d.coversSeq,
    text: d.text,
    model: d.model,
    usage: d.usage ?? null,
    createdAt: d.createdAt.toISOString(),
  };
}

const noId = { projection: { _id: 0 } } as const;

export function createTranscripts(mongo: Mongo) {
  const turns: Collection<TurnDoc> = mongo.db.collection<TurnDoc>('discussion_turns');
  const messages: Collection<MessageDoc> = mongo.db.collection<MessageDoc>('discussion_messages');
  const summaries: Collection<SummaryDoc> = mongo.db.collection<SummaryDoc>('discussion_summaries');
  let indexes: Promise<void> | undefined;

  const ready = (): Promise<void> =>
    (indexes ??= (async () => {
      await turns.createIndex({ discussionId: 1, turn: 1 }, { unique: true, name: 'discussion_turn' });
      await messages.createIndex({ discussionId: 1, seq: 1 }, { unique: true, name: 'discussion_seq' });
      await summaries.createIndex({ discussionId: 1, upToTurn: 1 }, { unique: true, name: 'discussion_up_to_turn' });
    })().catch((err: unknown) => {
      indexes = undefined;
      throw err;
    }));

  return {
    /** Creates the unique indexes (once per process; retried after a failure). */
    ready,

    /** Records a turn; a second write of the same turn replaces the first. */
    async putTurn(doc: TurnDoc): Promise<void> {
      await ready();
      await turns.replaceOne({ discussionId: doc.discussionId, turn: doc.turn }, doc, { upsert: true });
    },

    getTurn(discussionId: string, turn: number): Promise<TurnDoc | null> {
      return turns.findOne({ discussionId, turn }, noId);
    },

    /** Turns in order, optionally after `afterTurn` and up to `upToTurn`. */
    turns(discussionId: string, range: { afterTurn?: number; upToTurn?: number } = {}): Promise<TurnDoc[]> {
      const turn: Record<string, number> = {};
      if (range.afterTurn !== undefined) turn.$gt = range.afterTurn;
      if (range.upToTurn !== undefined) turn.$lte = range.upToTurn;
      return turns
        .find({ discussionId, ...(Object.keys(turn).length ? { turn } : {}) }, noId)
        .sort({ turn: 1 })
        .toArray();
    },

    async addMessage(doc: MessageDoc): Promise<void> {
      await ready();
      await messages.insertOne({ ...doc });
    },

    /** Human messages in seq order within [fromSeq, beforeSeq). */
    messages(discussionId: string, range: { fromSeq?: number; beforeSeq?: number } = {}): Promise<MessageDoc[]> {
      const seq: Record<string, number> = {};
      if (range.fromSeq !== undefined) seq.$gte = range.fromSeq;
      if (range.beforeSeq !== undefined) seq.$lt = range.beforeSeq;
      return messages
        .find({ discussionId, ...(Object.keys(seq).length ? { seq } : {}) }, noId)
        .sort({ seq: 1 })
        .toArray();
    },

    /** The summary covering the most turns, optionally no further than `upToTurn`. */
    async latestSummary(discussionId: string, upToTurn?: number): Promise<SummaryDoc | null> {
      const [doc] = await summaries
        .find({ discussionId, ...(upToTurn !== undefined ? { upToTurn: { $lte: upToTurn } } : {}) }, noId)
        .sort({ upToTurn: -1 })
        .limit(1)
        .toArray();
      return doc ?? null;
    },

    async putSummary(doc: SummaryDoc): Promise<void> {
      await ready();
      await summaries.replaceOne({ discussionId: doc.discussionId, upToTurn: doc.upToTurn }, doc, { upsert: true });
    },
  };
}

export type Transcripts = ReturnType<typeof createTranscripts>;
