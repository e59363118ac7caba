/**
 * Knowledge (issue 11): deterministic extraction of items, entities, classes,
 * topics, stances and links from sources; dedup that keeps value changes and
 * near-names apart; and the interface storage implements (`KnowledgeIndex`).
 * docs/knowledge.md is the guide.
 */
export { classify, stanceOf } from './classify.ts';
export type { Classification } from './classify.ts';
export { findTimes, parseTime } from './dates.ts';
export type { FoundTime } from './dates.ts';
export { DedupIndex, compareFingerprints, compareStatements, contentHash, fingerprint, lexicalSimilarity, normalise, trigramSimilarity } from './dedup.ts';
export type { DedupOptions, DedupVerdict, Fingerprint, Similarity } from './dedup.ts';
export { extractEntities, nameKey, namesUsedMidSentence } from './entities.ts';
export { SourceExtractor, extractSource, extractorName, extractorVersion } from './extract.ts';
export type { ExtractRequest, Extraction } from './extract.ts';
export {
  KnowledgeRepository,
  KnowledgeStore,
  NOT_SUPERSEDED,
  copyKnowledge,
  defaultFusionWeights,
  itemRow,
  knowledgeCollection,
  knowledgeShaping,
} from './lance-index.ts';
export type { FusionWeights, KnowledgeSpace, KnowledgeStoreOptions, OpenedKnowledge } from './lance-index.ts';
export { createKnowledgeRecords } from './records.ts';
export type { KnowledgeRecords, OutcomeRow, RetentionRow, SourceRow } from './records.ts';
export { decayOf, expiryOf, withRetention } from './retention.ts';
export { purgeExpiredKnowledge } from './purge.ts';
export { feedMessage, feedTurn, roomStatementOf, turnOf } from './feed.ts';
export type { RoomFeedDeps } from './feed.ts';
export { applyLlmAnswer, llmPassMaxItems, llmPassRequest, llmPassReservation } from './llm-pass.ts';
export type { LlmPassOutcome, LlmPassRequest } from './llm-pass.ts';
export { believedAt, readableScopes, scopeKey } from './knowledge-index.ts';
export type { KnowledgeHit, KnowledgeIndex, KnowledgeQuery } from './knowledge-index.ts';
export { answeredMessage, headItem } from './links.ts';
export { historyDepth, supersededChains } from './history.ts';
export { splitSentences } from './sentences.ts';
export type { Sentence } from './sentences.ts';
export { assignTopic } from './topic.ts';
