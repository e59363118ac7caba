/**
 * The vector store: the one place that talks to LanceDB. Everything above it
 * (code search, collections, later the knowledge work) deals in tables
 * declared by a `TableSpec`, rows, filters as data and search requests.
 *
 * - Writes are batched `mergeInsert`s. `upsert(rows, { replace })` also
 *   deletes the rows of the replaced slice (one repository's files, one
 *   document's passages) that the batch no longer has, so replacing all the
 *   chunks of a set of files is one commit, not a delete then an add.
 *   Writes to one table are serialised (lock.ts).
 * - Every search names its scopes; `scope IN (...)` is a prefilter, as is
 *   the caller's `where`, so a filter narrows the candidates before the top
 *   k is taken and never empties it.
 * - Hybrid search runs the vector and the full-text query side by side and
 *   fuses them with reciprocal rank fusion (rrf.ts).
 * - `maintain()` keeps the indexes whole: a full-text index once the table
 *   has rows (never on an empty table, where it would cover nothing),
 *   scalar indexes on `scope` and `content_hash`, a vector index once the
 *   table is large enough for it to beat a flat scan, then `optimize()`:
 *   compaction, index updates for new rows (so `numUnindexedRows` is 0) and
 *   removal of versions older than the retention. The versions a write
 *   leaves behind are removed by follow-up passes once they pass the
 *   retention, so a table that goes quiet returns to about its live size
 *   without waiting for the scheduled maintenance.
 *
 * Connections use `readConsistencyInterval: 0`: the API reads what worker
 * processes write the moment it is committed, and never a version that
 * `maintain()` has since removed.
 */
import { lstat, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { fixAllNullBoolColumns } from './arrow-bool.ts';
import { compileWhere, sqlString, type Scalar, type Where } from './filter.ts';
import { analyzeText } from './analyzer.ts';
import { processLock, type TableLock } from './lock.ts';
import { minMaxFusion, reciprocalRankFusion } from './rrf.ts';
import { arrowSchema, specFromSchema, validateSpec, type FieldType, type TableSpec } from './schema.ts';

// Index statistics without the IVF centroids: nothing here reads them, and lance warns on every
// indexStats call (each maintenance round) until a choice is made. An operator's own setting stands.
process.env.LANCE_INCLUDE_VECTOR_CENTROIDS ??= 'false';

export interface MaintenancePolicy {
  /**
   * Rows from which a table gets an ANN vector index. Below it a flat scan is
   * as fast and exact; bench/codebench measures the crossover on this machine.
   * @defaultValue 20 000
   */
  vectorIndexMinRows: number;
  /** The ANN index: HNSW over scalar-quantised vectors (IVF_HNSW_SQ), or IVF-PQ. @defaultValue 'hnsw_sq' */
  vectorIndex: 'hnsw_sq' | 'ivf_pq';
  /** HNSW candidate list size at query time (at least limit × refineFactor): recall against speed. @defaultValue 64 */
  hnswEf: number;
  /**
   * HNSW graph: neighbours per node, and the candidate list while building (recall against build time and
   * size). bench/codebench's scale phase measured ANN recall@10 at 50k rows 0.890 with LanceDB's 20/300 and
   * 0.988 with 48/600 at the same query latency, the build taking 11.5 s instead of 4.8. @defaultValue 48 and 600
   */
  hnswBuild: { m: number; efConstruction: number };
  /** How many candidates per result the ANN index yields to be re-ranked with exact distances. @defaultValue 10 */
  refineFactor: number;
  /**
   * Table versions younger than this survive `maintain()`, for queries still
   * reading them; older ones are removed. @defaultValue 10 000 ms
   */
  versionRetentionMs: number;
  /**
   * At most this many versions are kept, whatever their age, except those
   * younger than `versionFloorMs` (a burst of writes must not pile up
   * versions until the retention passes). @defaultValue 20
   */
  maxVersions: number;
  /** No version younger than this is ever removed: a query reads one version for milliseconds. @defaultValue 2 000 ms */
  versionFloorMs: number;
  /**
   * After a write's `maintain()`, the versions it left are removed once they
   * pass the retention, by up to this many follow-up passes on a quiet table
   * (a pass is `optimize()` with the cleanup; the first may compact and leave
   * versions of its own for the next). 0 leaves them to the next write or the
   * scheduled maintenance. @defaultValue 3
   */
  followUpPrunes: number;
  /** Full-text index options (docs/code-search.md says what was measured). */
  fts: { stem: boolean; removeStopWords: boolean };
}

export const defaultMaintenancePolicy: MaintenancePolicy = {
  vectorIndexMinRows: 20_000,
  vectorIndex: 'hnsw_sq',
  hnswEf: 64,
  hnswBuild: { m: 48, efConstruction: 600 },
  refineFactor: 10,
  versionRetentionMs: 10_000,
  maxVersions: 20,
  versionFloorMs: 2_000,
  followUpPrunes: 3,
  fts: { stem: true, removeStopWords: false },
};

export interface VectorStoreOptions {
  /** A folder, or an object-store URI (`s3://bucket/path`, `gs://…`, `az://…`). */
  uri: string;
  /** Orders writes per table; defaults to within this process only. */
  lock?: TableLock;
  maintenance?: Partial<MaintenancePolicy>;
  storageOptions?: Record<string, string>;
}

export type FieldValue = Scalar | string[] | null;

export interface VectorRow {
  id: string;
  scope: string;
  text: string;
  /** The analyzed text for the full-text index. @defaultValue analyzeText(text) */
  searchText?: string;
  contentHash: string;
  vector: ArrayLike<number>;
  fields?: Record<string, FieldValue>;
  /** The table's extra vector columns (TableSpec.vectors), every one of them. */
  vectors?: Record<string, ArrayLike<number>>;
  /** The table's extra full-text columns (TableSpec.texts), raw: the store analyzes them. */
  texts?: Record<string, string>;
}

/** A stored row as `rows()` reads it. */
export type StoredRow = Omit<Hit, 'score'> & { vector?: Float32Array; vectors?: Record<string, Float32Array> };

export type SearchMode = 'vector' | 'text' | 'hybrid';

export interface SearchRequest {
  /** Partitions to search (repositories, tenants); required and non-empty to match anything. */
  scopes: readonly string[];
  where?: Where;
  mode: SearchMode;
  /** The query vector, in this table's embedding space: required for vector and hybrid. */
  vector?: ArrayLike<number>;
  /** The query text (analyzed here): required for text and hybrid. */
  text?: string;
  limit: number;
  /** Hybrid: candidates taken from each side before fusion. @defaultValue max(50, 4 × limit) */
  candidates?: number;
  /** Hybrid: the RRF constant. @defaultValue 60 */
  rrfK?: number;
  /**
   * Hybrid: how the vector lists and the text list are fused: `rrf` by rank
   * (rrfK), `minmax` by each list's min-max normalised scores (rrf.ts). Several
   * vector columns in vector mode are always fused by rank. @defaultValue rrf
   */
  fuse?: 'rrf' | 'minmax';
  /** Hybrid: weights of the vector side and the text list. @defaultValue 1 and 1 */
  weights?: { vector: number; text: number };
  /**
   * Vector columns to search and their weights. One column: its ranking.
   * Several: their rankings fused with RRF (and, in hybrid, each list's
   * weight times `weights.vector`). @defaultValue { vector: 1 }
   */
  vectorColumns?: Readonly<Record<string, number>>;
  /** Full-text columns and their boosts, scored together (BM25, summed with boosts). @defaultValue { search_text: 1 } */
  textColumns?: Readonly<Record<string, number>>;
  /** Exact nearest neighbours, bypassing the vector index (to measure its recall). */
  exact?: boolean;
  /** Declared fields to return with each hit. @defaultValue all */
  fields?: readonly string[];
}

export interface Hit {
  id: string;
  scope: string;
  text: string;
  contentHash: string;
  /** Higher is better: 1 − cosine distance (vector), BM25 (text), the fused sum (hybrid: RRF votes or normalised scores). */
  score: number;
  /** Hybrid: the hit's rank in the vector and the text list (1-based, null when absent). */
  ranks?: { vector: number | null; text: number | null };
  fields: Record<string, unknown>;
}

export interface IndexState {
  name: string;
  type: string;
  columns: string[];
  indexedRows: number;
  unindexedRows: number;
}

export interface MaintenanceReport {
  rows: number;
  created: string[];
  compaction: { fragmentsRemoved: number; fragmentsAdded: number };
  versionsRemoved: number;
  bytesRemoved: number;
  indexes: IndexState[];
  durationMs: number;
}

export interface TableStats {
  rows: number;
  versions: number;
  fragments: number;
  /** Bytes of the current version's data. */
  liveBytes: number;
  /** Bytes of the current indexes. */
  indexBytes: number;
  /** Bytes on disk under the table's folder, old versions and indexes included; null for object stores. */
  diskBytes: number | null;
  indexes: IndexState[];
}

export interface WriteResult {
  inserted: number;
  updated: number;
  deleted: number;
  version: number;
}

const vectorColumn = 'vector';
const ftsColumn = 'search_text';

export class VectorTable {
  private readonly columns: ReadonlyMap<string, { column: string; type: FieldType }>;
  private readonly schema;
  /** The follow-up prune armed by the last maintain() (see the file comment). */
  private prune: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly table: lancedb.Table,
    readonly spec: TableSpec,
    private readonly lock: TableLock,
    private readonly policy: MaintenancePolicy,
    private readonly folder: string | null,
  ) {
    this.schema = arrowSchema(spec);
    this.columns = new Map(Object.entries(spec.fields).map(([name, type]) => [name, { column: name, type }]));
  }

  get name(): string {
    return this.spec.name;
  }

  /** The LanceDB table itself, for benchmarks that compare against it. Product code goes through the methods. */
  get raw(): lancedb.Table {
    return this.table;
  }

  /**
   * Inserts or updates `rows` by id in one commit. With `replace`, rows of
   * that scope (and, with `field`, whose field is one of `values`) that are
   * not in `rows` are deleted in the same commit.
   */
  async upsert(
    rows: readonly VectorRow[],
    opts: {
      replace?: { scope: string; field?: string; values?: readonly string[] };
      /** Insert only the rows whose id the table lacks; leave the others as stored (a copy into a new generation). */
      onlyNew?: boolean;
    } = {},
  ): Promise<WriteResult> {
    for (const r of rows) {
      if (r.vector.length !== this.spec.dimensions) throw new Error(`vector of ${r.vector.length} dimensions for table ${this.name} (${this.spec.dimensions})`);
      for (const col of this.spec.vectors ?? []) {
        const v = r.vectors?.[col];
        if (!v || v.length !== this.spec.dimensions) throw new Error(`row ${r.id}: ${col} is missing or not of ${this.spec.dimensions} dimensions`);
      }
    }
    const replace = opts.replace;
    let replaceWhere: string | undefined;
    if (replace) {
      if (replace.field !== undefined) {
        const col = this.columns.get(replace.field);
        if (!col || col.type !== 'string') throw new Error(`replace.field "${replace.field}" is not a string field of ${this.name}`);
        replaceWhere = `scope = ${sqlString(replace.scope)} AND ${col.column} IN (${(replace.values ?? []).map(sqlString).join(', ')})`;
        if (!replace.values?.length) replaceWhere = undefined;
      } else {
        replaceWhere = `scope = ${sqlString(replace.scope)}`;
      }
    }
    return this.lock(this.name, async () => {
      if (rows.length === 0) {
        if (!replaceWhere) return { inserted: 0, updated: 0, deleted: 0, version: await this.table.version() };
        const before = await this.table.countRows(replaceWhere);
        if (before === 0) return { inserted: 0, updated: 0, deleted: 0, version: await this.table.version() };
        await this.table.delete(replaceWhere);
        return { inserted: 0, updated: 0, deleted: before, version: await this.table.version() };
      }
      let builder = opts.onlyNew
        ? this.table.mergeInsert('id').whenNotMatchedInsertAll()
        : this.table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll();
      if (replaceWhere) builder = builder.whenNotMatchedBySourceDelete({ where: replaceWhere });
      const r = await builder.execute(this.toArrow(rows));
      return { inserted: r.numInsertedRows, updated: r.numUpdatedRows, deleted: r.numDeletedRows, version: r.version };
    });
  }

  /** Deletes the rows of `scopes` matching `where` (all of them without it), in one commit. */
  async delete(scopes: readonly string[], where?: Where): Promise<number> {
    const predicate = compileWhere(scopes, where, this.columns);
    return this.lock(this.name, async () => {
      const n = await this.table.countRows(predicate);
      if (n > 0) await this.table.delete(predicate);
      return n;
    });
  }

  async count(scopes?: readonly string[], where?: Where): Promise<number> {
    return scopes ? this.table.countRows(compileWhere(scopes, where, this.columns)) : this.table.countRows();
  }

  /**
   * Vectors already stored for these content hashes: equal content embeds to
   * an equal vector, so none of these needs the model. From any scope, or
   * only from `scopes` when given: what a caller may learn from which texts
   * were found (counts, time saved) is then limited to rows it may read.
   */
  async vectorsByHash(
    hashes: readonly string[],
    opts: { columns?: { vector: string; hash: string }; scopes?: readonly string[] } = {},
  ): Promise<Map<string, Float32Array>> {
    const columns = opts.columns ?? { vector: vectorColumn, hash: 'content_hash' };
    const out = new Map<string, Float32Array>();
    if (opts.scopes && opts.scopes.length === 0) return out;
    const inScopes = opts.scopes ? ` AND scope IN (${[...new Set(opts.scopes)].map(sqlString).join(', ')})` : '';
    const unique = [...new Set(hashes)];
    for (let i = 0; i < unique.length; i += 500) {
      const slice = unique.slice(i, i + 500);
      const rows = await this.table
        .query()
        .where(`${columns.hash} IN (${slice.map(sqlString).join(', ')})${inScopes}`)
        .select([columns.hash, columns.vector])
        .limit(Math.max(1000, slice.length * 50))
        .toArray();
      for (const r of rows as Record<string, { toArray(): Float32Array } | Float32Array | string>[]) {
        const h = r[columns.hash] as string;
        if (!out.has(h)) out.set(h, toFloat32(r[columns.vector] as Float32Array));
      }
    }
    return out;
  }

  /** The scopes that have rows (maintenance: rows left by a scope whose owner record is gone). */
  async scopes(): Promise<string[]> {
    const rows = await this.table.query().select(['scope']).limit(100_000_000).toArray();
    return [...new Set(rows.map((r: Record<string, unknown>) => r.scope as string))];
  }

  /** Every row's id, across scopes (maintenance: what a new generation still lacks). */
  async ids(): Promise<string[]> {
    const rows = await this.table.query().select(['id']).limit(100_000_000).toArray();
    return rows.map((r: Record<string, unknown>) => r.id as string);
  }

  /** Rows by id, whatever their scope (maintenance only: copying between generations). */
  async rowsById(ids: readonly string[], opts: { withVectors?: boolean } = {}): Promise<StoredRow[]> {
    const out: StoredRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const slice = ids.slice(i, i + 500);
      out.push(...(await this.select(`id IN (${slice.map(sqlString).join(', ')})`, { ...opts, limit: slice.length })));
    }
    return out;
  }

  /** Rows of the given scopes matching `where`, without ranking (for exports and consistency checks). */
  async rows(scopes: readonly string[], where?: Where, opts: { limit?: number; withVectors?: boolean } = {}): Promise<StoredRow[]> {
    return this.select(compileWhere(scopes, where, this.columns), opts);
  }

  private async select(predicate: string, opts: { limit?: number; withVectors?: boolean }): Promise<StoredRow[]> {
    const extra = this.spec.vectors ?? [];
    const cols = ['id', 'scope', 'text', 'content_hash', ...this.columns.keys(), ...(opts.withVectors ? [vectorColumn, ...extra] : [])];
    const rows = await this.table
      .query()
      .where(predicate)
      .select(cols)
      .limit(opts.limit ?? 1_000_000)
      .toArray();
    return rows.map((r: Record<string, unknown>) => ({
      id: r.id as string,
      scope: r.scope as string,
      text: r.text as string,
      contentHash: r.content_hash as string,
      fields: this.pickFields(r, undefined),
      ...(opts.withVectors
        ? { vector: toFloat32(r.vector as Float32Array), vectors: Object.fromEntries(extra.map((c) => [c, toFloat32(r[c] as Float32Array)])) }
        : {}),
    }));
  }

  async search(req: SearchRequest): Promise<Hit[]> {
    const predicate = compileWhere(req.scopes, req.where, this.columns);
    const fields = req.fields ?? [...this.columns.keys()];
    for (const f of fields) if (!this.columns.has(f)) throw new Error(`unknown field "${f}" of ${this.name}`);
    const select = ['id', 'scope', 'text', 'content_hash', ...fields];
    const limit = Math.max(1, req.limit);
    const vectorColumns = Object.entries(req.vectorColumns ?? { [vectorColumn]: 1 }).filter(([, w]) => w > 0);
    for (const [c] of vectorColumns)
      if (c !== vectorColumn && !(this.spec.vectors ?? []).includes(c)) throw new Error(`unknown vector column "${c}" of ${this.name}`);
    const candidates = req.candidates ?? Math.max(50, limit * 4);
    const k = req.rrfK ?? 60;
    const fuse = (lists: { items: Record<string, unknown>[]; weight: number }[], n: number) =>
      reciprocalRankFusion(lists, (r) => r.id as string, k).slice(0, n);
    switch (req.mode) {
      case 'vector': {
        if (vectorColumns.length === 1) {
          return (await this.vectorQuery(req, vectorColumns[0]![0], predicate, select, limit)).map((r) => this.toHit(r, 1 - (r._distance as number), fields));
        }
        const lists = await Promise.all(
          vectorColumns.map(async ([c, w]) => ({ items: await this.vectorQuery(req, c, predicate, select, candidates), weight: w })),
        );
        return fuse(lists, limit).map((f) => this.toHit(f.item, f.score, fields));
      }
      case 'text':
        return (await this.textQuery(req, predicate, select, limit)).map((r) => this.toHit(r, r._score as number, fields));
      case 'hybrid': {
        const wv = req.weights?.vector ?? 1;
        const [vecLists, txt] = await Promise.all([
          Promise.all(vectorColumns.map(async ([c, w]) => ({ items: await this.vectorQuery(req, c, predicate, select, candidates), weight: w * wv }))),
          this.textQuery(req, predicate, select, candidates),
        ]);
        const lists = [...vecLists, { items: txt, weight: req.weights?.text ?? 1 }];
        const fused =
          req.fuse === 'minmax'
            ? minMaxFusion(
                lists,
                (r) => r.id as string,
                (r, li) => (li < vecLists.length ? 1 - (r._distance as number) : (r._score as number)),
              ).slice(0, limit)
            : fuse(lists, limit);
        const textIndex = vecLists.length;
        return fused.map((f) => {
          const vranks = f.ranks.slice(0, textIndex).filter((r): r is number => r !== null);
          return { ...this.toHit(f.item, f.score, fields), ranks: { vector: vranks.length ? Math.min(...vranks) : null, text: f.ranks[textIndex] ?? null } };
        });
      }
    }
  }

  private async vectorQuery(req: SearchRequest, column: string, predicate: string, select: string[], limit: number): Promise<Record<string, unknown>[]> {
    if (!req.vector) throw new Error('a vector search needs a query vector');
    if (req.vector.length !== this.spec.dimensions)
      throw new Error(`query vector of ${req.vector.length} dimensions for table ${this.name} (${this.spec.dimensions})`);
    let q = this.table
      .query()
      .nearestTo(Array.from(req.vector))
      .column(column)
      .distanceType('cosine')
      .where(predicate)
      .select(withColumn(select, '_distance'))
      .limit(limit);
    if (req.exact) q = q.bypassVectorIndex();
    // The index is asked for limit × refineFactor candidates (re-ranked with exact distances), and an HNSW
    // search must keep at least as many in its list: ef below that is an error, not a smaller answer.
    else q = q.ef(Math.max(this.policy.hnswEf, limit * this.policy.refineFactor)).refineFactor(this.policy.refineFactor);
    return q.toArray();
  }

  private async textQuery(req: SearchRequest, predicate: string, select: string[], limit: number): Promise<Record<string, unknown>[]> {
    if (req.text === undefined) throw new Error('a text search needs query text');
    const analyzed = analyzeText(req.text);
    if (!analyzed) return [];
    const columns = Object.entries(req.textColumns ?? { [ftsColumn]: 1 }).filter(([, b]) => b > 0);
    for (const [c] of columns) if (c !== ftsColumn && !(this.spec.texts ?? []).includes(c)) throw new Error(`unknown full-text column "${c}" of ${this.name}`);
    const query =
      columns.length === 1 && columns[0]![1] === 1
        ? analyzed
        : new lancedb.MultiMatchQuery(
            analyzed,
            columns.map(([c]) => c),
            { boosts: columns.map(([, b]) => b) },
          );
    const q = typeof query === 'string' ? this.table.query().fullTextSearch(query, { columns: columns[0]![0] }) : this.table.query().fullTextSearch(query);
    return q.where(predicate).select(withColumn(select, '_score')).limit(limit).toArray();
  }

  private pickFields(r: Record<string, unknown>, fields: readonly string[] | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of fields ?? this.columns.keys()) {
      const v = r[f];
      out[f] = v !== null && typeof v === 'object' && 'toArray' in (v as object) ? [...(v as { toArray(): unknown[] }).toArray()] : v;
    }
    return out;
  }

  private toHit(r: Record<string, unknown>, score: number, fields: readonly string[]): Hit {
    return {
      id: r.id as string,
      scope: r.scope as string,
      text: r.text as string,
      contentHash: r.content_hash as string,
      score,
      fields: this.pickFields(r, fields),
    };
  }

  private toArrow(rows: readonly VectorRow[]) {
    fixAllNullBoolColumns();
    const records = rows.map((r) => {
      const rec: Record<string, unknown> = {
        id: r.id,
        scope: r.scope,
        text: r.text,
        search_text: r.searchText ?? analyzeText(r.text),
        content_hash: r.contentHash,
        vector: Array.from(r.vector),
      };
      for (const [name] of this.columns) rec[name] = r.fields?.[name] ?? null;
      for (const name of this.spec.vectors ?? []) rec[name] = Array.from(r.vectors![name]!);
      for (const name of this.spec.texts ?? []) rec[name] = analyzeText(r.texts?.[name] ?? '');
      return rec;
    });
    return lancedb.makeArrowTable(records, { schema: this.schema });
  }

  async indexes(): Promise<IndexState[]> {
    const list = await this.table.listIndices();
    return Promise.all(
      list.map(async (ix) => {
        const s = await this.table.indexStats(ix.name);
        return { name: ix.name, type: ix.indexType, columns: ix.columns, indexedRows: s?.numIndexedRows ?? 0, unindexedRows: s?.numUnindexedRows ?? 0 };
      }),
    );
  }

  /** See the file comment. Runs under the table's write lock. */
  async maintain(opts: { cleanup?: boolean } = {}): Promise<MaintenanceReport> {
    return this.lock(this.name, async () => {
      const started = Date.now();
      const rows = await this.table.countRows();
      const created: string[] = [];
      let compaction = { fragmentsRemoved: 0, fragmentsAdded: 0 };
      let versionsRemoved = 0;
      let bytesRemoved = 0;
      if (rows > 0) {
        const existing = new Set((await this.table.listIndices()).map((i) => i.name));
        for (const col of [ftsColumn, ...(this.spec.texts ?? [])]) {
          if (existing.has(`${col}_idx`)) continue;
          await this.table.createIndex(col, {
            name: `${col}_idx`,
            config: lancedb.Index.fts({
              baseTokenizer: 'simple',
              lowercase: true,
              stem: this.policy.fts.stem,
              removeStopWords: this.policy.fts.removeStopWords,
              asciiFolding: true,
              withPosition: false,
            }),
          });
          created.push(`${col}_idx`);
        }
        for (const col of ['scope', 'content_hash']) {
          if (!existing.has(`${col}_idx`)) {
            await this.table.createIndex(col, { name: `${col}_idx`, config: lancedb.Index.btree() });
            created.push(`${col}_idx`);
          }
        }
        for (const col of [vectorColumn, ...(this.spec.vectors ?? [])]) {
          if (existing.has(`${col}_idx`) || rows < this.policy.vectorIndexMinRows) continue;
          await this.table.createIndex(col, { name: `${col}_idx`, config: this.vectorIndexConfig(rows) });
          created.push(`${col}_idx`);
        }
        const stats = await this.table.optimize(opts.cleanup === false ? {} : { cleanupOlderThan: await this.cleanupCutoff() });
        compaction = { fragmentsRemoved: stats.compaction.fragmentsRemoved, fragmentsAdded: stats.compaction.fragmentsAdded };
        versionsRemoved = stats.prune.oldVersionsRemoved;
        bytesRemoved = stats.prune.bytesRemoved;
      } else if (opts.cleanup !== false) {
        const stats = await this.table.optimize({ cleanupOlderThan: await this.cleanupCutoff() });
        versionsRemoved = stats.prune.oldVersionsRemoved;
        bytesRemoved = stats.prune.bytesRemoved;
      }
      if (opts.cleanup !== false) {
        if (this.folder) await removeEmptyIndexDirs(this.folder);
        this.armPrune(this.policy.followUpPrunes);
      }
      return { rows, created, compaction, versionsRemoved, bytesRemoved, indexes: await this.indexes(), durationMs: Date.now() - started };
    });
  }

  /** Arms (or re-arms, with `passes` left) the follow-up prune one retention (at least the floor) from now. */
  private armPrune(passes: number): void {
    clearTimeout(this.prune);
    this.prune = undefined;
    if (passes <= 0 || this.closed) return;
    this.prune = setTimeout(() => void this.prunePass(passes), Math.max(this.policy.versionRetentionMs, this.policy.versionFloorMs) + 500).unref();
  }

  /**
   * One follow-up pass: optimize() with the cleanup, under the write lock. On a quiet, compacted table it
   * commits nothing and only removes versions; another pass is armed while the table still has more than one.
   * Best effort: a failure leaves the versions to the next write or the scheduled maintenance.
   */
  private async prunePass(passes: number): Promise<void> {
    this.prune = undefined;
    if (this.closed) return;
    try {
      await this.lock(this.name, async () => {
        if (this.closed || this.prune) return; // a maintain() ran meanwhile and armed its own
        // A pass runs at no moment its caller chose, so it never removes a version younger than the floor, even
        // with a retention below it (tests use 0): a read in flight may still be on it.
        const cutoff = Math.min((await this.cleanupCutoff()).getTime(), Date.now() - this.policy.versionFloorMs);
        await this.table.optimize({ cleanupOlderThan: new Date(cutoff) });
        if (this.folder) await removeEmptyIndexDirs(this.folder);
        if ((await this.table.listVersions()).length > 1) this.armPrune(passes - 1);
      });
    } catch {
      // The next write's maintenance, or the scheduled one, removes them.
    }
  }

  /** Stops the follow-up prune; the store calls it when the table is closed or dropped. */
  close(): void {
    this.closed = true;
    clearTimeout(this.prune);
    this.prune = undefined;
    this.table.close();
  }

  /**
   * Versions older than the cutoff go: older than the retention, or beyond
   * the newest `maxVersions`, but never younger than the floor. The cutoff
   * is computed before optimize() adds its own versions, which are younger.
   */
  private async cleanupCutoff(): Promise<Date> {
    const now = Date.now();
    let cutoff = now - this.policy.versionRetentionMs;
    const versions = await this.table.listVersions();
    if (versions.length > this.policy.maxVersions) {
      const sorted = versions.map((v) => v.timestamp.getTime()).sort((a, b) => b - a);
      // Keep the newest maxVersions - 1: optimize() adds at least one more.
      const keepFrom = sorted[Math.max(0, this.policy.maxVersions - 2)]!;
      cutoff = Math.max(cutoff, Math.min(keepFrom, now - this.policy.versionFloorMs));
    }
    return new Date(Math.min(cutoff, now - Math.min(this.policy.versionFloorMs, this.policy.versionRetentionMs)));
  }

  private vectorIndexConfig(rows: number): lancedb.Index {
    if (this.policy.vectorIndex === 'ivf_pq') {
      return lancedb.Index.ivfPq({
        distanceType: 'cosine',
        numPartitions: Math.max(1, Math.round(Math.sqrt(rows))),
        numSubVectors: this.spec.dimensions % 16 === 0 ? this.spec.dimensions / 16 : this.spec.dimensions % 8 === 0 ? this.spec.dimensions / 8 : 1,
      });
    }
    // One HNSW graph per IVF partition; few partitions keep recall high at our sizes.
    return lancedb.Index.hnswSq({
      distanceType: 'cosine',
      numPartitions: Math.max(1, Math.round(rows / 100_000)),
      m: this.policy.hnswBuild.m,
      efConstruction: this.policy.hnswBuild.efConstruction,
    });
  }

  async stats(): Promise<TableStats> {
    const [s, versions, indexes, configs] = await Promise.all([this.table.stats(), this.table.listVersions(), this.indexes(), this.table.listIndices()]);
    return {
      rows: s.numRows,
      versions: versions.length,
      fragments: s.fragmentStats.numFragments,
      liveBytes: s.totalBytes,
      indexBytes: configs.reduce((n, c) => n + Number((c as { sizeBytes?: number }).sizeBytes ?? 0), 0),
      diskBytes: this.folder ? await folderBytes(this.folder) : null,
      indexes,
    };
  }
}

export class VectorStore {
  private readonly tables = new Map<string, Promise<VectorTable>>();
  readonly policy: MaintenancePolicy;
  private readonly lock: TableLock;

  private constructor(
    private readonly db: lancedb.Connection,
    readonly uri: string,
    opts: VectorStoreOptions,
  ) {
    this.policy = { ...defaultMaintenancePolicy, ...opts.maintenance, fts: { ...defaultMaintenancePolicy.fts, ...opts.maintenance?.fts } };
    this.lock = opts.lock ?? processLock();
  }

  static async open(opts: VectorStoreOptions): Promise<VectorStore> {
    const db = await lancedb.connect(opts.uri, { readConsistencyInterval: 0, ...(opts.storageOptions ? { storageOptions: opts.storageOptions } : {}) });
    return new VectorStore(db, opts.uri, opts);
  }

  private get local(): boolean {
    return !/^[a-z][a-z0-9+.-]*:\/\//i.test(this.uri) || this.uri.startsWith('file://');
  }

  /** Opens the table, creating it empty (with the spec's schema) if it does not exist yet. */
  table(spec: TableSpec): Promise<VectorTable> {
    validateSpec(spec);
    let t = this.tables.get(spec.name);
    if (!t) {
      t = this.openOrCreate(spec);
      this.tables.set(spec.name, t);
      t.catch(() => this.tables.delete(spec.name));
    }
    return t.then((table) => {
      if (table.spec.dimensions !== spec.dimensions)
        throw new Error(`vector table ${spec.name} has ${table.spec.dimensions} dimensions, not ${spec.dimensions}`);
      return table;
    });
  }

  /**
   * Another process (a worker starting a generation while the API answers a query) may be creating
   * the table right now: its folder is listed before its first version is written, and opening it in
   * that moment fails with "not found". That is waited out, up to about 5 s, instead of failing the
   * caller (it answered a query 500 in CI).
   */
  private async openOrCreate(spec: TableSpec): Promise<VectorTable> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.openOrCreateOnce(spec);
      } catch (err) {
        if (attempt >= 50 || !/not found/i.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async openOrCreateOnce(spec: TableSpec): Promise<VectorTable> {
    const folder = this.local ? join(this.uri.replace(/^file:\/\//, ''), `${spec.name}.lance`) : null;
    const names = await this.db.tableNames();
    if (!names.includes(spec.name)) {
      const created = await this.db.createEmptyTable(spec.name, arrowSchema(spec), { existOk: true });
      return new VectorTable(created, spec, this.lock, this.policy, folder);
    }
    const table = await this.db.openTable(spec.name);
    // A table created before its spec declared a field gains it (null in the rows it has): schema evolution
    // without a rewrite. Only declared fields are added (nullable by construction); vectors and full-text
    // columns are part of an index's identity and never change in place.
    const missing = async () => {
      const have = new Set((await table.schema()).fields.map((f) => f.name));
      return Object.entries(spec.fields).filter(([name]) => !have.has(name));
    };
    if ((await missing()).length)
      await this.lock(spec.name, async () => {
        // Another process may have added them while this one waited for the lock.
        await table.checkoutLatest();
        const fields = await missing();
        if (fields.length) await table.addColumns(fields.map(([name, type]) => ({ name, valueSql: `CAST(NULL AS ${sqlTypeOf(type, spec.name, name)})` })));
      });
    return new VectorTable(table, spec, this.lock, this.policy, folder);
  }

  async tableNames(): Promise<string[]> {
    return this.db.tableNames();
  }

  /** An existing table, its spec read from its schema; undefined when there is none. */
  async existing(name: string): Promise<VectorTable | undefined> {
    const open = this.tables.get(name);
    if (open) return open;
    if (!(await this.db.tableNames()).includes(name)) return undefined;
    const raw = await this.db.openTable(name);
    const spec = specFromSchema(name, await raw.schema());
    raw.close();
    return this.table(spec);
  }

  async dropTable(name: string): Promise<void> {
    const t = this.tables.get(name);
    this.tables.delete(name);
    await this.lock(name, async () => {
      (await t?.catch(() => undefined))?.close();
      if ((await this.db.tableNames()).includes(name)) await this.db.dropTable(name);
    });
  }

  close(): void {
    for (const t of this.tables.values())
      void t.then(
        (x) => x.close(),
        () => {},
      );
    this.tables.clear();
    this.db.close();
  }
}

export function openVectorStore(opts: VectorStoreOptions): Promise<VectorStore> {
  return VectorStore.open(opts);
}

/**
 * A search's select with the column lance computes for it (`_distance`, `_score`) named: lance adds it
 * to a narrowed select by itself today, logging a deprecation warning per search, and will stop.
 */
function withColumn(select: string[], computed: '_distance' | '_score'): string[] {
  return select.includes(computed) ? select : [...select, computed];
}

function toFloat32(v: { toArray(): Float32Array } | Float32Array | number[]): Float32Array {
  if (v instanceof Float32Array) return v;
  if (Array.isArray(v)) return Float32Array.from(v);
  return Float32Array.from(v.toArray());
}

/**
 * On a local folder Lance's cleanup deletes an old index's files but leaves its directory under
 * `_indices`: every update's optimize() leaves a few, and each later cleanup lists them all, so
 * maintenance grew slower with the table's history (bench/codebench: 166 ms per update after 100
 * updates, over 1 s after 1,000; 2,400 empty directories after 400). Called under the table's write
 * lock, so no index is being written; `rmdir` removes a directory only if it is empty.
 */
async function removeEmptyIndexDirs(folder: string): Promise<void> {
  const entries = await readdir(join(folder, '_indices'), { withFileTypes: true }).catch(() => []);
  for (const e of entries)
    if (e.isDirectory())
      await rmdir(join(folder, '_indices', e.name)).catch(() => {
        // Not empty: a live index.
      });
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e);
    const s = await lstat(p);
    total += s.isDirectory() ? await folderBytes(p) : s.size;
  }
  return total;
}

/** The SQL type a declared field is added as (schema evolution); lists cannot be added to a table in place. */
function sqlTypeOf(type: FieldType, table: string, field: string): string {
  switch (type) {
    case 'string':
      return 'VARCHAR';
    case 'int':
      return 'INT';
    case 'float':
      return 'DOUBLE';
    case 'bool':
      return 'BOOLEAN';
    case 'string[]':
      throw new Error(`vector table ${table}: a list field (${field}) cannot be added to an existing table; declare it in a new one`);
  }
}
