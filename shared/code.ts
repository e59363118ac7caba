/**
 * Code intelligence over HTTP: repositories, their index, symbol lookups and
 * search. docs/code-search.md walks through them.
 */
import { z } from 'zod';
import { nonBlank } from './params.ts';
import { Visibility } from './discussions.ts';
import { CodeLanguage } from './jobs/code-chunk.ts';
import { JobState } from './job-api.ts';

/** Definitions the metadata extractor records. Interfaces, type aliases and enums exist in TypeScript only. */
export const SymbolKind = z.enum(['function', 'class', 'method', 'interface', 'type', 'enum']);
export type SymbolKind = z.infer<typeof SymbolKind>;

/** What a search hit is: a definition, or top-level code outside any definition (`module`). */
export const ChunkKind = z.enum(['function', 'class', 'method', 'module']);
export type ChunkKind = z.infer<typeof ChunkKind>;

export const RepositoryName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit');

export const RepositorySource = z.discriminatedUnion('type', [
  /** A folder on the worker machines, under one of PARLEY_CODE_ROOTS; operators and admins only. */
  z.object({ type: z.literal('path'), path: z.string().min(1).max(4096) }).strict(),
  /** A .tar.gz uploaded with PUT /v1/code/repositories/:id/archive. */
  z.object({ type: z.literal('archive') }).strict(),
]);
export type RepositorySource = z.infer<typeof RepositorySource>;

export const CreateRepository = z
  .object({
    name: RepositoryName,
    source: RepositorySource,
    visibility: Visibility.default('private'),
    /** User ids that may read (search) the repository when visibility is `shared`. */
    sharedWith: z.array(z.uuid().toLowerCase()).max(100).default([]),
  })
  .strict();
export type CreateRepository = z.infer<typeof CreateRepository>;

/** What makes vectors comparable: two indexes with different identities are different embedding spaces. */
export const IndexIdentityView = z.object({
  model: z.string(),
  digest: z.string(),
  dimensions: z.number().int(),
  chunker: z.string(),
});

export const RepositoryIndexView = z.object({
  generation: z.uuid().toLowerCase(),
  /** `serving`: searches read it; `building`: a new identity is being built beside the serving one. */
  state: z.enum(['serving', 'building', 'retired']),
  identity: IndexIdentityView,
  files: z.number().int(),
  chunks: z.number().int(),
  languages: z.record(z.string(), z.number().int()),
  /** Files left out, by reason: ignored, binary, generated, too_large, unsupported, symlink, unreadable. */
  skipped: z.record(z.string(), z.number().int()),
  indexedAt: z.iso.datetime().nullable(),
});

export const Repository = z.object({
  id: z.uuid().toLowerCase(),
  owner: z.uuid().toLowerCase(),
  name: z.string(),
  visibility: Visibility,
  sharedWith: z.array(z.uuid().toLowerCase()),
  source: RepositorySource,
  /** The uploaded archive, for archive sources. */
  snapshot: z.object({ bytes: z.number().int(), files: z.number().int(), sha256: z.string(), uploadedAt: z.iso.datetime() }).nullable(),
  /** The serving index of the repository, and a building one when an identity change is under way. */
  index: RepositoryIndexView.nullable(),
  building: RepositoryIndexView.nullable(),
  /** The latest index job, with its live progress. */
  job: z
    .object({ id: z.uuid().toLowerCase(), state: JobState, progress: z.unknown().nullable(), links: z.object({ self: z.string(), events: z.string() }) })
    .nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type Repository = z.infer<typeof Repository>;

export const RepositoryList = z.object({ items: z.array(Repository) });

export const ArchiveReceipt = z.object({
  repository: z.uuid().toLowerCase(),
  bytes: z.number().int(),
  /** Files in the tree: distinct paths (a path the archive holds twice counts once; its last entry is the file). */
  files: z.number().int(),
  sha256: z.string(),
  /** Entries not written: directories, and links to places inside the tree (which are never followed). */
  skipped: z.record(z.string(), z.number().int()),
});

export const SearchMode = z.enum(['hybrid', 'vector', 'text']);

export const CodeSearchQuery = z
  .object({
    q: nonBlank(1000),
    /** Repository ids, comma-separated; all the caller may read when absent. */
    repository: z.string().max(3800).optional(),
    mode: SearchMode.default('hybrid'),
    language: CodeLanguage.optional(),
    /** A path prefix, e.g. `src/` or `src/server.ts`. */
    path: z.string().min(1).max(1024).optional(),
    kind: ChunkKind.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(10),
  })
  .strict();
export type CodeSearchQuery = z.infer<typeof CodeSearchQuery>;

export const CodeSearchHit = z.object({
  repository: z.uuid().toLowerCase(),
  path: z.string(),
  language: CodeLanguage,
  symbol: z.string().nullable(),
  kind: ChunkKind,
  startLine: z.number().int(),
  endLine: z.number().int(),
  score: z.number(),
  snippet: z.string(),
});
export type CodeSearchHit = z.infer<typeof CodeSearchHit>;

export const CodeSearchResults = z.object({
  items: z.array(CodeSearchHit),
  /** The mode that ran: hybrid falls back to text when the serving index's model cannot embed the query. */
  mode: SearchMode,
  /** The one index every hit came from. */
  index: z.object({ generation: z.uuid().toLowerCase(), identity: IndexIdentityView }).nullable(),
  /** Why the requested mode could not run in full. */
  degraded: z.string().optional(),
});
export type CodeSearchResults = z.infer<typeof CodeSearchResults>;

export const SymbolQuery = z
  .object({
    /** Case-insensitive; matches the name (`send`) or the qualified name (`Session.send`). A trailing `*` matches a prefix. */
    name: nonBlank(300),
    kind: SymbolKind.optional(),
    path: z.string().min(1).max(1024).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();
export type SymbolQuery = z.infer<typeof SymbolQuery>;

export const ImportRef = z.object({ module: z.string(), names: z.array(z.string()) });
export type ImportRef = z.infer<typeof ImportRef>;

export const CodeSymbol = z.object({
  repository: z.uuid().toLowerCase(),
  path: z.string(),
  language: CodeLanguage,
  name: z.string(),
  qualifiedName: z.string(),
  kind: SymbolKind,
  signature: z.string(),
  /** Lines 1-based; columns 0-based, in UTF-16 code units. */
  span: z.object({ startLine: z.number().int(), startColumn: z.number().int(), endLine: z.number().int(), endColumn: z.number().int() }),
  /** The qualified name of the enclosing class, or null at module level. */
  parent: z.string().nullable(),
  docstring: z.string().nullable(),
  /** What the definition's file imports. */
  imports: z.array(ImportRef),
});
export type CodeSymbol = z.infer<typeof CodeSymbol>;

export const SymbolList = z.object({ items: z.array(CodeSymbol) });
