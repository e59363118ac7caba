export { ApiErrorCode, JobErrorCode, JobError, Problem, isRetryable } from './errors.ts';
export { PriorityClass } from './priority.ts';
export { Usage } from './usage.ts';
export { OllamaOptions, OllamaFormat, KeepAlive, keepAliveSeconds, ChatMessage } from './ollama-options.ts';
export { QueueName, defineJob, type JobDefinition, type JobDefaults, type InputOf, type ResultOf, type ProgressOf } from './jobs/define.ts';
export { JobEnvelope } from './jobs/envelope.ts';
export { jobs, jobKinds, publicJobKinds, isJobKind, type JobKind, type Jobs, type PublicJobKind } from './jobs/index.ts';
export { LlmChatInput, LlmChatResult, llmChat } from './jobs/llm-chat.ts';
export { EmbedBatchInput, EmbedBatchResult, embedBatch } from './jobs/embed-batch.ts';
export { CodeChunkInput, CodeChunkResult, CodeChunk, CodeLanguage, SourceFile, codeChunk } from './jobs/code-chunk.ts';
export { SystemPingInput, SystemPingResult, systemPing } from './jobs/system-ping.ts';
export { ModelPullInput, ModelPullResult, ModelPullProgress, modelPull } from './jobs/model-pull.ts';
export { ModelName, parseModelName, canonicalModelName, defaultRegistryHost, type ParsedModelName } from './model-name.ts';
export {
  HostReach, ModelOnHost, HostResult, ModelSummary, ModelList, ModelDetails, RunningModel, RunningModels,
  CreateModelBody, CopyModelBody, ModelChange, DeletedModel, LoadModelBody, ModelLoadState, PullModelBody, PullModelAccepted,
} from './model-api.ts';
export {
  UsageDay, UsageTotals, UsageQuery, UsageRow, UsageReport, AdminUsageQuery, AdminUsageItem, AdminUsageReport,
  BudgetScope, BudgetPeriod, BudgetStatus, Budget, PutBudgetBody, ListBudgetsQuery, BudgetList,
} from './usage-api.ts';
export { DiscussionTurnInput, DiscussionTurnResult, discussionTurn } from './jobs/discussion-turn.ts';
export { DiscussionSummarizeInput, DiscussionSummarizeResult, discussionSummarize } from './jobs/discussion-summarize.ts';
export { JobState, terminalStates, isTerminal, SubmitJobBody, SubmittedJob, JobView, JobSummary, ListJobsQuery, JobList, IdempotencyKey } from './job-api.ts';
export { jobEvents, TokensEvent, ProgressEvent, ResetEvent, FinishedEvent, SubscribeRequest, EventStreamQuery, LastEventId, sseFrame, type JobEvent, type JobEventName } from './events.ts';
export {
  AgentName, AgentInput, AgentPatch, Agent, AgentList, TurnPolicy, DiscussionPolicy, Visibility, RoomStatus, closedStatuses, isClosed,
  CreateDiscussion, AgentOverride, ForkRequest, RoomAgent, Lineage, Discussion, ListDiscussionsQuery, DiscussionList,
  TurnStatus, ContextStats, Turn, PostHumanMessage, HumanMessage, Summary, TranscriptQuery, Transcript, Comparison,
  roomEvents, TurnStartedEvent, RoomTokensEvent, TurnFinishedEvent, RoomStatusEvent, HumanMessageEvent, RoomSnapshotEvent,
  type RoomEvent, type RoomEventName, type RoomEventPayload,
} from './discussions.ts';
export {
  Role, Permission, Username, Password, TokenResponse, OAuthError, TokenRequest, TokenForm, Me, Session, SessionList, CreateApiKey, CreateApiKeyDocumented, ApiKey, ApiKeyList, CreatedApiKey,
  ChangePassword, ResetPassword, PasswordChanged, NewUser, CreatedUser, UserPatch, UserView, UserList, AuditOutcome, AuditQuery, AuditEventView, AuditPage,
} from './auth-api.ts';
export { SubmitJobRequest } from './jobs/submit.ts';
export {
  SymbolKind, ChunkKind, RepositoryName, RepositorySource, CreateRepository, IndexIdentityView, RepositoryIndexView, Repository, RepositoryList, ArchiveReceipt,
  SearchMode, CodeSearchQuery, CodeSearchHit, CodeSearchResults, SymbolQuery, ImportRef, CodeSymbol, SymbolList,
} from './code.ts';
export { CodeIndexInput, CodeIndexProgress, CodeIndexResult, codeIndex } from './jobs/code-index.ts';
export { DocumentInput, CollectionUpsertInput, CollectionUpsertResult, collectionUpsert } from './jobs/collection-upsert.ts';
export { VectorsMaintainInput, VectorsMaintainResult, vectorsMaintain } from './jobs/vectors-maintain.ts';
export {
  FieldType, CollectionName, CreateCollection, Collection, CollectionList, UpsertDocuments, CollectionQuery, CollectionHit, CollectionResults,
  FilterCondition, FilterValue,
} from './collections.ts';
export { Liveness, ReadinessCheck, Readiness, ReadinessQuery } from './ops-api.ts';
export { IdParams, CompareParams, ModelNameParams, Revoked } from './params.ts';
export {
  SourceTime, SourceMessage, DocumentSource, ConversationSource, Source, KnowledgeScope, ScopeRef, ParsedTime,
  KnowledgeClass, Stance, EntityKind, Entity, Provenance, KnowledgeItem, LinkType, NodeRef, Link, ExtractionOutcome,
  CreateKnowledgeSource, KnowledgeSourceStatus, KnowledgeSourceView, KnowledgeSourceList, KnowledgeSourceAccepted, KnowledgeItemParams, KnowledgeLinks,
  KnowledgeSearchQuery, KnowledgeSearchHit, KnowledgeRelated, KnowledgeSearchResults,
} from './knowledge-api.ts';
export { KnowledgeExtractInput, KnowledgeExtractResult, KnowledgeExtractProgress, knowledgeExtract } from './jobs/knowledge-extract.ts';
