/**
 * The registry of job kinds. Adding a kind here without a handler in
 * workers/handlers is a type error there.
 */
import { codeBatch } from './code-batch.ts';
import { codeChunk } from './code-chunk.ts';
import { codeIndex } from './code-index.ts';
import { collectionUpsert } from './collection-upsert.ts';
import { discussionSummarize } from './discussion-summarize.ts';
import { discussionTurn } from './discussion-turn.ts';
import { embedBatch } from './embed-batch.ts';
import { knowledgeExtract } from './knowledge-extract.ts';
import { llmChat } from './llm-chat.ts';
import { modelPull } from './model-pull.ts';
import { systemPing } from './system-ping.ts';
import { vectorsMaintain } from './vectors-maintain.ts';

export const jobs = {
  [llmChat.kind]: llmChat,
  [embedBatch.kind]: embedBatch,
  [codeChunk.kind]: codeChunk,
  [systemPing.kind]: systemPing,
  [modelPull.kind]: modelPull,
  [discussionTurn.kind]: discussionTurn,
  [discussionSummarize.kind]: discussionSummarize,
  [codeIndex.kind]: codeIndex,
  [codeBatch.kind]: codeBatch,
  [collectionUpsert.kind]: collectionUpsert,
  [vectorsMaintain.kind]: vectorsMaintain,
  [knowledgeExtract.kind]: knowledgeExtract,
} as const;

export type Jobs = typeof jobs;
export type JobKind = keyof Jobs;
export const jobKinds = Object.keys(jobs) as JobKind[];

/** Kinds a client may submit with POST /v1/jobs: every kind not marked `internal`. */
export type PublicJobKind = { [K in JobKind]: Jobs[K] extends { internal?: true } ? never : K }[JobKind];
export const publicJobKinds = jobKinds.filter((k) => !jobs[k].internal) as PublicJobKind[];

export function isJobKind(kind: string): kind is JobKind {
  return Object.hasOwn(jobs, kind);
}
