/**
 * Code intelligence on the vector store: repositories and their record,
 * the tree scan with ignore rules, safe archive uploads, the code index's
 * tables and search, and the one adapter through which these features
 * submit jobs. docs/code-search.md is the guide.
 */
export { ArchiveError, linkStaysInside, moveAside, safeEntryPath, stageArchive, sweepArchiveStaging } from './archive.ts';
export type { ArchiveErrorCode, ArchiveLimits, StagedArchive, UnpackResult } from './archive.ts';
export { IgnoreMatcher, matchRules, parseIgnoreFile } from './ignore.ts';
export type { IgnoreRule } from './ignore.ts';
export { SourcePathError, archiveStaging, archiveTree, repositoryTree, resolveSourcePath } from './roots.ts';
export { createCodeSearch, defaultFusion, servingGeneration } from './search.ts';
export type { CodeSearch, CodeSearchDeps, CodeSearchRequest, Fusion } from './search.ts';
export { createCodeStore } from './store.ts';
export type { CodeStore, FileMetadata, IndexStateRow, IndexedFile, RepositoryRow, SymbolRecord, SymbolRow } from './store.ts';
export { submitJob } from './submit.ts';
export type { SubmitDeps, SubmittedInternalJob } from './submit.ts';
export { chunkerVersion, codeCollection, codeTableSpec, identityView } from './tables.ts';
export { contentVerdict, hashContent, scanTree } from './walk.ts';
export type { SkipReason, TreeFile, TreeScan, WalkOptions } from './walk.ts';
