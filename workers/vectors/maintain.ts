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
import { copyKnowledge, knowledgeCollection, type KnowledgeStore } from '../../platform/knowledge/index.ts';
import type { vectorsMaintain } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';
import { promoteIfComplete } from '../code/index-job.ts';

export interface MaintainDeps {
  vectors: VectorStore;
  catalog: IndexCatalog;
  embedder: Embedder;
  code: CodeStore;
  collections: CollectionStore;
  /** Knowledge's items: their generations are rebuilt here (rebuildKnowledge). */
  knowledge: KnowledgeStore;
  /** Purges soft-expired knowledge past `before` (platform/knowledge purgeExpiredKnowledge); answers its table (a catalog generation's, maintained with the others), for the result. */
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

    const knowledgeRebuild = await rebuildKnowledge(deps, ctx.signal).catch((err: unknown) => {
      ctx.log.warn({ err }, 'knowledge rebuild failed');
      return null;
    });

    // Knowledge first: what the purge deletes is compacted away by the maintenance below.
    const purge = await deps.purgeKnowledge(Date.now() - deps.config.knowledgePurgeGraceMs, ctx.signal).catch((err: unknown) => {
      ctx.log.warn({ err }, 'knowledge purge failed');
      return null;
    });

    const live: VectorTable[] = [];
    let orphanRows = 0;
    for (const gen of await deps.catalog.list()) {
      if (gen.state === 'retired') continue;
      const table = await deps.vectors.existing(gen.tableName);
      if (!table) continue;
      live.push(table);
      if (gen.collection === codeCollection) orphanRows += await sweepDeletedRepositories(deps.code, table);
    }

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
      // A retired knowledge generation stays until a copy has found nothing of it missing from the serving one.
      if (gen.collection === knowledgeCollection && !knowledgeRebuild?.drained.has(gen.id)) continue;
      await deps.vectors.dropTable(gen.tableName);
      await deps.catalog.remove(gen.id);
      dropped.push(gen.tableName);
    }
    // Generations of collections whose record is gone (a delete that stopped after removing it) leave the
    // catalog, so the sweep below drops their tables. The generations are read first: one made for a
    // collection created after that read is not among them.
    const generations = await deps.catalog.list();
    const collectionIds = new Set((await deps.collections.list()).map((c) => c.id));
    for (const gen of generations)
      if (gen.tableName.startsWith(collectionTablePrefix(gen.collection)) && !collectionIds.has(gen.collection)) await deps.catalog.remove(gen.id);
    // Tables no generation references: left behind by a generation removed mid-build, or by a deleted
    // collection. Only those the catalog named for this namespace: another deployment may share the store.
    const referenced = await deps.catalog.tableNames();
    for (const name of await deps.vectors.tableNames()) {
      if (deps.catalog.owns(name) && !referenced.has(name)) {
        await deps.vectors.dropTable(name);
        dropped.push(name);
      }
    }
    return {
      tables,
      rebuild,
      dropped,
      orphanRows,
      knowledge: purge && { purged: purge.purged, table: purge.table?.name ?? null },
      knowledgeRebuild: knowledgeRebuild && {
        copied: knowledgeRebuild.copied,
        deleted: knowledgeRebuild.deleted,
        rewritten: knowledgeRebuild.rewritten,
        promoted: knowledgeRebuild.promoted,
      },
    };
  };
}

/**
 * Removes the rows of repositories that no longer exist. A scope read from the table had a repository
 * record when its rows were written, and ids are never reused, so one whose record is gone now was deleted:
 * its rows are what a batch committed around the delete and did not live to withdraw.
 */
async function sweepDeletedRepositories(code: CodeStore, table: VectorTable): Promise<number> {
  const scopes = await table.scopes();
  if (!scopes.length) return 0;
  const alive = new Set(await code.existingRepositories(scopes));
  const gone = scopes.filter((s) => !alive.has(s));
  return gone.length ? table.delete(gone) : 0;
}

/**
 * Knowledge's generations (platform/knowledge lance-index.ts). A generation
 * being built for the configured model gets what it lacks copied from the
 * serving one, then serves; it waits until it is older than twice the
 * store's refresh, so that every process writes to it before the copy
 * starts. A serving generation gets copied in what it lacks of each retired
 * one still on disk (one that had to serve before a copy, its predecessor's
 * model gone); `drained` names the retired ones found to lack nothing, the
 * only ones maintenance may drop.
 */
export async function rebuildKnowledge(deps: Pick<MaintainDeps, 'knowledge' | 'catalog' | 'vectors' | 'embedder'>, signal: AbortSignal) {
  const store = deps.knowledge;
  const out = { copied: 0, deleted: 0, rewritten: 0, promoted: null as string | null, drained: new Set<string>() };
  const add = (r: { copied: number; deleted: number; rewritten: number }) => {
    out.copied += r.copied;
    out.deleted += r.deleted;
    out.rewritten += r.rewritten;
  };
  // Only the configured model is needed here (the copy re-embeds every text with it): a serving model that is
  // gone or unreachable does not hold the switch up.
  const { identity, model } = await store.identity(signal);
  const found = await store.current(identity);
  const wanted = found.current;
  if (!wanted) return out; // this process's model was replaced: a process configured with the new one does the work
  let gens = found.gens;
  if (wanted.state === 'building' && Date.now() - wanted.createdAt.getTime() >= 2 * store.refreshMs) {
    const serving = gens.find((g) => g.state === 'serving');
    const from = serving && (await deps.vectors.existing(serving.tableName));
    if (from) add(await copyKnowledge(from, await store.space(wanted, model), deps.embedder, signal));
    if (await deps.catalog.promote(wanted.id)) out.promoted = wanted.id;
    store.invalidate();
    gens = await deps.catalog.list(knowledgeCollection);
  }
  const serving = gens.find((g) => g.state === 'serving');
  if (serving?.id !== wanted.id) return out;
  const target = await store.space(serving, model);
  for (const g of gens.filter((x) => x.state === 'retired')) {
    const table = await deps.vectors.existing(g.tableName);
    const r = table ? await copyKnowledge(table, target, deps.embedder, signal) : { copied: 0, deleted: 0, rewritten: 0 };
    add(r);
    // Drained: a pass that found nothing to do. Only then may the retired table go.
    if (r.copied + r.deleted + r.rewritten === 0) out.drained.add(g.id);
  }
  return out;
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
