/**
 * The `vectors.maintain` handler (shared/jobs/vectors-maintain.ts says what
 * it does, docs/vectors.md why). It runs as a recorded job every
 * PARLEY_VECTORS_MAINTAIN_INTERVAL_S, submitted by one worker process at a
 * time (workers/main.ts).
 */
import { chunkerVersion, codeCollection, codeTableSpec, type CodeStore } from '../../platform/code/index.ts';
import {
  collectionTablePrefix,
  collectionTableSpec,
  passagesVersion,
  sameIdentity,
  type CollectionStore,
  type Embedder,
  type Generation,
  type IndexCatalog,
  type IndexIdentity,
  type MaintenanceReport,
  type VectorStore,
  type VectorTable,
} from '../../platform/vectors/index.ts';
import type { vectorsMaintain } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';
import { promoteIfComplete } from '../code/index-job.ts';

export interface MaintainDeps {
  vectors: VectorStore;
  catalog: IndexCatalog;
  embedder: Embedder;
  code: CodeStore;
  collections: CollectionStore;
  /** Purges soft-expired knowledge past `before` (platform/knowledge purgeExpiredKnowledge); answers its table, maintained here with the others. */
  purgeKnowledge: (before: number, signal: AbortSignal) => Promise<{ purged: number; table: VectorTable | null }>;
  /** Submits a code.index job into `generation` (deduplicated by `key`). */
  submitIndex(repositoryId: string, generation: string, key: string): Promise<void>;
  config: { embedModel: string; embedWindow: number; embedBatch: number; retiredGraceMs: number; knowledgePurgeGraceMs: number };
}

export function vectorsMaintainHandler(deps: MaintainDeps): Handler<typeof vectorsMaintain> {
  return async (input, ctx) => {
    const period = input.period ?? Math.floor(Date.now() / 60_000);
    const rebuild = await rebuildCode(deps, period).catch((err: unknown) => {
      ctx.log.warn({ err }, 'code index rebuild check failed');
      return null;
    });
    await rebuildCollections(deps, ctx.signal).catch((err: unknown) => ctx.log.warn({ err }, 'collection rebuild failed'));

    // Knowledge first: what the purge deletes is compacted away by the maintenance below.
    const purge = await deps.purgeKnowledge(Date.now() - deps.config.knowledgePurgeGraceMs, ctx.signal).catch((err: unknown) => {
      ctx.log.warn({ err }, 'knowledge purge failed');
      return null;
    });

    const live: VectorTable[] = [];
    for (const gen of await deps.catalog.list()) {
      if (gen.state === 'retired') continue;
      const table = await deps.vectors.existing(gen.tableName);
      if (table) live.push(table);
    }
    if (purge?.table) live.push(purge.table);

    // Each round also removes the versions the previous round's optimize() made (they are past the retention by
    // now), so a table left alone ends with one version after two rounds.
    const tables: { name: string; rows: number; versionsRemoved: number; bytesRemoved: number; created: string[]; durationMs: number }[] = [];
    for (const table of live) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      ctx.progress({ table: table.name });
      const r: MaintenanceReport = await table.maintain();
      tables.push({
        name: table.name,
        rows: r.rows,
        versionsRemoved: r.versionsRemoved,
        bytesRemoved: r.bytesRemoved,
        created: r.created,
        durationMs: r.durationMs,
      });
    }

    const dropped: string[] = [];
    for (const gen of await deps.catalog.retiredBefore(new Date(Date.now() - deps.config.retiredGraceMs))) {
      await deps.vectors.dropTable(gen.tableName);
      await deps.catalog.remove(gen.id);
      dropped.push(gen.tableName);
    }
    // Tables no generation references: left behind by a generation removed mid-build, or by a deleted
    // collection. Only those the catalog named for this namespace: another deployment may share the store.
    const referenced = await deps.catalog.tableNames();
    for (const name of await deps.vectors.tableNames()) {
      if (deps.catalog.owns(name) && !referenced.has(name)) {
        await deps.vectors.dropTable(name);
        dropped.push(name);
      }
    }
    return { tables, rebuild, dropped, knowledge: purge && { purged: purge.purged, table: purge.table?.name ?? null } };
  };
}

/**
 * When the configured model's identity differs from the serving code index:
 * make sure the new generation exists, schedule a build of every repository
 * it still lacks, and promote it once it lacks none. Building generations of
 * identities no longer wanted are dropped.
 */
async function rebuildCode(deps: MaintainDeps, period: number) {
  const serving = await deps.catalog.serving(codeCollection);
  const model = await deps.embedder.describe(deps.config.embedModel);
  const identity: IndexIdentity = { model: model.model, digest: model.digest, dimensions: model.dimensions, chunker: chunkerVersion(deps.config.embedWindow) };
  for (const g of await deps.catalog.list(codeCollection)) {
    if (g.state === 'building' && !sameIdentity(g.identity, identity)) {
      await deps.catalog.remove(g.id);
      await deps.vectors.dropTable(g.tableName);
    }
  }
  if (!serving || sameIdentity(serving.identity, identity)) return null;
  const gen = await deps.catalog.ensure(codeCollection, identity, 'code');
  const have = new Set(await deps.code.indexedIn(gen.id));
  const missing = (await deps.code.indexedIn(serving.id)).filter((id) => !have.has(id));
  for (const repositoryId of missing) await deps.submitIndex(repositoryId, gen.id, `code.index:${repositoryId}:${gen.id}:${period}`);
  // Opening the table makes an empty generation visible to maintenance even before its first job.
  await deps.vectors.table(codeTableSpec(gen));
  const promoted = missing.length === 0 ? await promoteIfComplete({ catalog: deps.catalog, store: deps.code }, gen) : false;
  return { generation: gen.id, scheduled: missing.length, promoted };
}

/**
 * A collection whose model's digest changed is rebuilt from its own rows:
 * the passages' texts are stored, so they are embedded again under the new
 * identity into a new generation, which then takes over. Documents already
 * written to the new generation (upserts during the rebuild) are left as
 * they are.
 */
async function rebuildCollections(deps: MaintainDeps, signal: AbortSignal): Promise<void> {
  for (const coll of await deps.collections.list()) {
    const serving = await deps.catalog.serving(coll.id);
    if (!serving) continue;
    const model = await deps.embedder.describe(coll.embed_model).catch(() => undefined);
    if (!model) continue;
    const identity: IndexIdentity = {
      model: model.model,
      digest: model.digest,
      dimensions: model.dimensions,
      chunker: passagesVersion(deps.config.embedWindow),
    };
    if (sameIdentity(serving.identity, identity)) continue;
    const gen: Generation = await deps.catalog.ensure(coll.id, identity, collectionTablePrefix(coll.id));
    const from = await deps.vectors.table(collectionTableSpec(serving, coll.fields));
    const to = await deps.vectors.table(collectionTableSpec(gen, coll.fields));
    const done = new Set((await to.rows([coll.id])).map((r) => r.fields.doc_id as string));
    const rows = (await from.rows([coll.id])).filter((r) => !done.has(r.fields.doc_id as string));
    for (let i = 0; i < rows.length; i += 256) {
      const slice = rows.slice(i, i + 256);
      const { vectors } = await deps.embedder.embed(
        model.model,
        slice.map((r) => r.text),
        { signal, batchSize: deps.config.embedBatch },
      );
      await to.upsert(
        slice.map((r, j) => ({ id: r.id, scope: r.scope, text: r.text, contentHash: r.contentHash, vector: vectors[j]!, fields: r.fields as never })),
      );
    }
    await to.maintain();
    await deps.catalog.promote(gen.id);
  }
}
