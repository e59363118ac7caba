/**
 * The code index's record in Postgres: repositories, what each index
 * generation holds for them file by file, and the symbols and imports of
 * every indexed file. The vectors themselves live in LanceDB
 * (platform/vectors); a file is recorded here only after its chunks were
 * committed there, so a crash between the two makes the next run redo that
 * file, never skip it.
 */
import type { Knex } from 'knex';
import type { ImportRef, RepositorySource, SymbolKind, Visibility } from '../../shared/index.ts';
import type { Db } from '../connections/index.ts';

export interface RepositoryRow {
  id: string;
  owner_id: string;
  name: string;
  visibility: Visibility;
  shared_with: string[];
  source: RepositorySource;
  snapshot: { bytes: number; files: number; sha256: string; uploadedAt: string } | null;
  index_job_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface IndexStateRow {
  repository_id: string;
  index_id: string;
  files: number;
  chunks: number;
  languages: Record<string, number>;
  skipped: Record<string, number>;
  indexed_at: Date | null;
  job_id: string | null;
  job_baseline: number | null;
}

export interface IndexedFile {
  path: string;
  fileHash: string;
  language: string;
  bytes: number;
  chunks: number;
}

export interface SymbolRecord {
  name: string;
  qualifiedName: string;
  kind: SymbolKind;
  signature: string;
  startLine: number;
  startColumn: number;
  endLine: number;
  endColumn: number;
  parent: string | null;
  docstring: string | null;
}

export interface FileMetadata {
  path: string;
  language: string;
  fileHash: string;
  imports: ImportRef[];
  symbols: SymbolRecord[];
}

export interface SymbolRow {
  repository_id: string;
  path: string;
  language: string;
  name: string;
  qualified_name: string;
  kind: SymbolKind;
  signature: string;
  start_line: number;
  start_column: number;
  end_line: number;
  end_column: number;
  parent: string | null;
  docstring: string | null;
  imports: ImportRef[] | null;
}

/** The rows `userId` may read as a user: own, shared with them, public (the API's `code:read` rule without `code:any`). */
function readableBy(userId: string) {
  return (w: Knex.QueryBuilder) =>
    w
      .where('owner_id', userId)
      .orWhere('visibility', 'public')
      .orWhere((s) => s.where('visibility', 'shared').whereRaw('? = any(shared_with)', [userId]));
}

export function createCodeStore(db: Db) {
  return {
    async insertRepository(row: Pick<RepositoryRow, 'id' | 'owner_id' | 'name' | 'visibility' | 'shared_with' | 'source'>): Promise<RepositoryRow | undefined> {
      const [r] = await db<RepositoryRow>('code_repositories')
        .insert({ ...row, source: JSON.stringify(row.source) as never, shared_with: row.shared_with as never })
        .onConflict(['owner_id', 'name'])
        .ignore()
        .returning('*');
      return r;
    },

    getRepository(id: string): Promise<RepositoryRow | undefined> {
      return db<RepositoryRow>('code_repositories').where({ id }).first();
    },

    /** Which of these repository ids still exist. */
    async existingRepositories(ids: readonly string[]): Promise<string[]> {
      const out: string[] = [];
      for (let i = 0; i < ids.length; i += 1000) {
        const rows = await db('code_repositories')
          .whereIn('id', ids.slice(i, i + 1000) as string[])
          .select('id');
        out.push(...rows.map((r: { id: string }) => r.id));
      }
      return out;
    },

    /** Repositories `userId` may read: own, shared with them, public; every one with `all`. */
    visibleRepositories(userId: string, all: boolean, ids?: readonly string[]): Promise<RepositoryRow[]> {
      const q = db<RepositoryRow>('code_repositories').select('*').orderBy('created_at', 'desc');
      if (!all) q.where(readableBy(userId));
      if (ids) q.whereIn('id', ids as string[]);
      return q;
    },

    /**
     * The ids of the repositories `userId` may read (own, shared with them, public), whatever their
     * role: an index batch reuses stored vectors only from these, so its counts say nothing of others.
     */
    async readableRepositoryIds(userId: string): Promise<string[]> {
      const rows = await db('code_repositories').where(readableBy(userId)).select('id');
      return rows.map((r: { id: string }) => r.id);
    },

    async deleteRepository(id: string, q: Knex = db): Promise<boolean> {
      return (await q('code_repositories').where({ id }).delete()) > 0;
    },

    /** Writes the snapshot; false when the repository no longer exists. */
    async setSnapshot(id: string, snapshot: RepositoryRow['snapshot'], q: Knex = db): Promise<boolean> {
      const n = await q('code_repositories')
        .where({ id })
        .update({ snapshot: JSON.stringify(snapshot), updated_at: db.fn.now() });
      return n > 0;
    },

    /**
     * Runs `fn` in a transaction holding the repository's tree lock (a Postgres advisory lock, so it
     * holds across API processes sharing the code directory): uploads swap a tree in, and deletes
     * remove it, one at a time, each with its row change in the same transaction.
     */
    withTreeLock<T>(id: string, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
      return db.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`parley.code.tree:${id}`]);
        return fn(trx);
      });
    },

    async setIndexJob(id: string, jobId: string): Promise<void> {
      await db('code_repositories').where({ id }).update({ index_job_id: jobId, updated_at: db.fn.now() });
    },

    /** Each repository's state in each generation. */
    indexStates(repositoryIds: readonly string[]): Promise<IndexStateRow[]> {
      if (!repositoryIds.length) return Promise.resolve([]);
      return db<IndexStateRow>('code_index_state').whereIn('repository_id', repositoryIds as string[]);
    },

    async indexState(repositoryId: string, indexId: string): Promise<IndexStateRow | undefined> {
      return db<IndexStateRow>('code_index_state').where({ repository_id: repositoryId, index_id: indexId }).first();
    },

    async saveIndexState(state: Omit<IndexStateRow, 'indexed_at'> & { indexed: boolean }): Promise<void> {
      const { indexed, ...row } = state;
      await db('code_index_state')
        .insert({ ...row, languages: JSON.stringify(row.languages), skipped: JSON.stringify(row.skipped), indexed_at: indexed ? db.fn.now() : null })
        .onConflict(['repository_id', 'index_id'])
        .merge();
    },

    /** Repositories fully indexed in `indexId`. */
    async indexedIn(indexId: string): Promise<string[]> {
      return (await db('code_index_state').where({ index_id: indexId }).whereNotNull('indexed_at').select('repository_id')).map(
        (r: { repository_id: string }) => r.repository_id,
      );
    },

    async files(repositoryId: string, indexId: string): Promise<Map<string, IndexedFile>> {
      const rows = await db('code_files').where({ repository_id: repositoryId, index_id: indexId }).select('path', 'file_hash', 'language', 'bytes', 'chunks');
      return new Map(
        rows.map((r: { path: string; file_hash: string; language: string; bytes: number; chunks: number }) => [
          r.path,
          { path: r.path, fileHash: r.file_hash, language: r.language, bytes: r.bytes, chunks: r.chunks },
        ]),
      );
    },

    /**
     * Records a committed batch: its files in the generation, and their
     * symbols and imports (which do not depend on the generation), in one
     * transaction.
     */
    async recordBatch(repositoryId: string, indexId: string, files: readonly IndexedFile[], metadata: readonly FileMetadata[]): Promise<void> {
      if (!files.length && !metadata.length) return;
      await db.transaction(async (trx) => {
        if (files.length) {
          await trx('code_files')
            .insert(
              files.map((f) => ({
                repository_id: repositoryId,
                index_id: indexId,
                path: f.path,
                file_hash: f.fileHash,
                language: f.language,
                bytes: f.bytes,
                chunks: f.chunks,
              })),
            )
            .onConflict(['repository_id', 'index_id', 'path'])
            .merge();
        }
        if (metadata.length) {
          const paths = metadata.map((m) => m.path);
          await trx('code_symbols').where({ repository_id: repositoryId }).whereIn('path', paths).delete();
          await trx('code_modules')
            .insert(
              metadata.map((m) => ({
                repository_id: repositoryId,
                path: m.path,
                language: m.language,
                file_hash: m.fileHash,
                imports: JSON.stringify(m.imports),
              })),
            )
            .onConflict(['repository_id', 'path'])
            .merge();
          const symbols = metadata.flatMap((m) =>
            m.symbols.map((s) => ({
              repository_id: repositoryId,
              path: m.path,
              language: m.language,
              name: s.name,
              qualified_name: s.qualifiedName,
              kind: s.kind,
              signature: s.signature,
              start_line: s.startLine,
              start_column: s.startColumn,
              end_line: s.endLine,
              end_column: s.endColumn,
              parent: s.parent,
              docstring: s.docstring,
            })),
          );
          for (let i = 0; i < symbols.length; i += 1000) await trx('code_symbols').insert(symbols.slice(i, i + 1000));
        }
      });
    },

    /** Files gone from the tree: out of the generation, and their metadata out of the repository. */
    async removeFiles(repositoryId: string, indexId: string, paths: readonly string[]): Promise<void> {
      if (!paths.length) return;
      await db.transaction(async (trx) => {
        for (let i = 0; i < paths.length; i += 1000) {
          const slice = paths.slice(i, i + 1000) as string[];
          await trx('code_files').where({ repository_id: repositoryId, index_id: indexId }).whereIn('path', slice).delete();
          await trx('code_symbols').where({ repository_id: repositoryId }).whereIn('path', slice).delete();
          await trx('code_modules').where({ repository_id: repositoryId }).whereIn('path', slice).delete();
        }
      });
    },

    /** Symbols by name or qualified name (case-insensitive; a trailing `*` is a prefix match), with their file's imports. */
    findSymbols(repositoryIds: readonly string[], q: { name: string; kind?: SymbolKind; path?: string; limit: number }): Promise<SymbolRow[]> {
      if (!repositoryIds.length) return Promise.resolve([]);
      const prefix = q.name.endsWith('*');
      const name = (prefix ? q.name.slice(0, -1) : q.name).toLowerCase();
      const pattern = `${name.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const query = db('code_symbols as s')
        .leftJoin('code_modules as m', (j) => j.on('m.repository_id', 's.repository_id').andOn('m.path', 's.path'))
        .whereIn('s.repository_id', repositoryIds as string[])
        .select('s.*', 'm.imports')
        .orderBy([{ column: 's.path' }, { column: 's.start_line' }])
        .limit(q.limit);
      if (prefix) query.where((w) => w.whereRaw('lower(s.name) like ?', [pattern]).orWhereRaw('lower(s.qualified_name) like ?', [pattern]));
      else query.where((w) => w.whereRaw('lower(s.name) = ?', [name]).orWhereRaw('lower(s.qualified_name) = ?', [name]));
      if (q.kind) query.where('s.kind', q.kind);
      if (q.path) query.whereRaw('starts_with(s.path, ?)', [q.path]);
      return query;
    },
  };
}

export type CodeStore = ReturnType<typeof createCodeStore>;
