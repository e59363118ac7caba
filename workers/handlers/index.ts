import type { BudgetGuards } from '../../platform/usage/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { Jobs } from '../../shared/index.ts';
import { codeBatchHandler, codeIndexHandler, type CodeIndexDeps } from '../code/index-job.ts';
import { knowledgeExtractHandler, type KnowledgeExtractDeps } from '../knowledge/extract-job.ts';
import type { DiscussionRuntime } from '../discussions/runtime.ts';
import { collectionUpsertHandler, type CollectionUpsertDeps } from '../vectors/collection-upsert.ts';
import { vectorsMaintainHandler, type MaintainDeps } from '../vectors/maintain.ts';
import type { HandlerMap } from '../runtime/handler.ts';
import { codeChunkHandler, type ChunkRunner } from './code-chunk.ts';
import { discussionSummarizeHandler } from './discussion-summarize.ts';
import { discussionTurnHandler } from './discussion-turn.ts';
import { embedBatchHandler } from './embed-batch.ts';
import { llmChatHandler } from './llm-chat.ts';
import { modelPullHandler, type ModelPullDeps } from './model-pull.ts';
import { systemPingHandler } from './system-ping.ts';

export interface HandlerDeps {
  ollama: OllamaClient;
  chatModel: string;
  embedModel: string;
  defaultNumPredict: number;
  chunkPool: ChunkRunner;
  /** Token budgets checked while llm.chat streams and between embed.batch calls; without it, only the reservation made at submit bounds a job. */
  budget?: BudgetGuards;
  /** embed.batch's result bound (PARLEY_JOB_LIMITS), checked early by projection. */
  embedMaxResultBytes?: number;
  modelPull: ModelPullDeps;
  /** Rooms, transcripts, memory and scheduling for the discussion.* kinds. */
  discussions: DiscussionRuntime;
  /** The vector store and code intelligence: code.index and its code.batch children, collection.upsert, vectors.maintain. */
  vectors: { codeIndex: CodeIndexDeps; collectionUpsert: CollectionUpsertDeps; maintain: MaintainDeps };
  /** Knowledge extraction: sources' record (Postgres) and the items' store (LanceDB). */
  knowledge: KnowledgeExtractDeps;
}

export function createHandlers(deps: HandlerDeps) {
  return {
    'llm.chat': llmChatHandler(deps),
    'embed.batch': embedBatchHandler({ ollama: deps.ollama, embedModel: deps.embedModel, budget: deps.budget, maxResultBytes: deps.embedMaxResultBytes }),
    'code.chunk': codeChunkHandler({ pool: deps.chunkPool }),
    'system.ping': systemPingHandler(),
    'model.pull': modelPullHandler(deps.modelPull),
    'discussion.turn': discussionTurnHandler(deps.discussions),
    'discussion.summarize': discussionSummarizeHandler(deps.discussions),
    'code.index': codeIndexHandler(deps.vectors.codeIndex),
    'code.batch': codeBatchHandler(deps.vectors.codeIndex),
    'collection.upsert': collectionUpsertHandler(deps.vectors.collectionUpsert),
    'vectors.maintain': vectorsMaintainHandler(deps.vectors.maintain),
    'knowledge.extract': knowledgeExtractHandler(deps.knowledge),
  } satisfies HandlerMap<Jobs>;
}
