/**
 * The Parley SDK: a typed client for the API, in Node 20 and browsers.
 * React hooks are in `sdk/react`. Guide: docs/sdk.md.
 */
export { createClient, type ClientOptions, type ParleyClient } from './client.ts';
export {
  ParleyError,
  isParleyError,
  isUnauthenticated,
  isForbidden,
  isNotFound,
  isValidationError,
  isRateLimited,
  isAborted,
  isCancelled,
  type ParleyErrorCode,
  type ClientErrorCode,
  type ProblemBody,
} from './errors.ts';
export type { AuthOption, Session } from './internal/auth.ts';
export type { RetryOptions } from './internal/backoff.ts';
export type { Interceptors, RequestContext, ResponseContext, RetryContext } from './internal/http.ts';
export { EventStream, type StreamOptions } from './internal/event-stream.ts';
export type { Paginated } from './internal/pages.ts';
export type { Submitted, SubmitOptions, RunOptions, JobStreamOptions, FollowOptions, ListJobs, JobsResource } from './resources/jobs.ts';
export type { NewRepository, ArchiveReceipt, ArchiveBody, CodeSearchOptions, SymbolSearchOptions, IndexWaitOptions, CodeResource } from './resources/code.ts';
export type { NewCollection, NewDocument, CollectionQueryOptions, CollectionHit, UpsertWaitOptions, CollectionsResource } from './resources/collections.ts';
export {
  isLastRoomEvent,
  type NewAgent,
  type AgentChanges,
  type NewDiscussion,
  type NewFork,
  type RoomStreamOptions,
  type DiscussionsResource,
  type AgentsResource,
} from './resources/discussions.ts';
export type { KnowledgeResource, KnowledgeSearch } from './resources/knowledge.ts';
export type { JobInput, JobResult, JobProgress, EventOf, CallOptions, StreamTransport } from './types.ts';
export type {
  JobEvent,
  RoomEvent,
  PublicJobKind,
  JobKind,
  JobView,
  JobState,
  SubmittedJob,
  Discussion,
  Agent,
  Turn,
  HumanMessage,
  Transcript,
  RoomStatus,
  ModelSummary,
  UsageReport,
  Usage,
  Me,
  Problem,
  ApiErrorCode,
  JobErrorCode,
  Repository,
  RepositorySource,
  CodeSearchResults,
  CodeSearchHit,
  CodeSymbol,
  SymbolKind,
  ChunkKind,
  Collection,
  CollectionResults,
  FieldType,
  Source,
  KnowledgeItem,
  KnowledgeSourceView,
  KnowledgeSearchResults,
  KnowledgeLinks,
} from '../shared/index.ts';
