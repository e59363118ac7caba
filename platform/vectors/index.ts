/**
 * The vector store: the only module that talks to LanceDB. Generic over what
 * it stores (code chunks, collections' documents, later the knowledge work):
 * tables declared by a spec, scoped prefilters, vector, full-text and hybrid
 * (RRF) search, index maintenance, and index generations per embedding
 * identity recorded in Postgres. docs/vectors.md is the guide.
 */
export { analyzeText, splitIdentifier } from './analyzer.ts';
export { createIndexCatalog, identityHash, namespaceTag, sameIdentity } from './catalog.ts';
export type { Generation, GenerationState, IndexCatalog, IndexIdentity } from './catalog.ts';
export { collectionTablePrefix, collectionTableSpec, createCollectionStore, metadataColumn, passageRowId, passagesVersion } from './collections.ts';
export type { CollectionRow, CollectionStore } from './collections.ts';
export { Embedder, canonicalModel } from './embedder.ts';
export type { EmbedOptions, EmbedderOptions, EmbeddingModel } from './embedder.ts';
export { FilterError, compileWhere, sqlString } from './filter.ts';
export type { Condition, Scalar, Where } from './filter.ts';
export { processLock, redisLock } from './lock.ts';
export type { TableLock } from './lock.ts';
export { fittingPrefix, splitPassages } from './passages.ts';
export type { Passage } from './passages.ts';
export { minMaxFusion, reciprocalRankFusion } from './rrf.ts';
export type { FusedItem } from './rrf.ts';
export { fitsFieldType, specFromSchema } from './schema.ts';
export type { FieldType, TableSpec } from './schema.ts';
export { VectorStore, VectorTable, defaultMaintenancePolicy, openVectorStore } from './store.ts';
export type {
  FieldValue,
  Hit,
  IndexState,
  MaintenancePolicy,
  MaintenanceReport,
  SearchMode,
  SearchRequest,
  TableStats,
  VectorRow,
  VectorStoreOptions,
  WriteResult,
} from './store.ts';
export { EstimateCounter, WordPieceCounter, tokenCounter } from './tokens.ts';
export type { TokenCounter, TokenizerSpec } from './tokens.ts';
