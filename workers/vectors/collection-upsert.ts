/**
 * The `collection.upsert` handler: documents → passages that fit the model's
 * window → vectors (only for passages whose text no row has yet) → one
 * LanceDB commit that also drops the passages those documents no longer
 * have → indexes brought up to date.
 */
import { hash } from 'node:crypto';
import { JobFailure } from '../../platform/jobs/index.ts';
import {
  collectionTablePrefix,
  collectionTableSpec,
  fitsFieldType,
  metadataColumn,
  passageRowId,
  passagesVersion,
  splitPassages,
  tokenCounter,
  type CollectionStore,
  type Embedder,
  type IndexCatalog,
  type VectorRow,
  type VectorStore,
} from '../../platform/vectors/index.ts';
import type { collectionUpsert } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';

export interface CollectionUpsertDeps {
  collections: CollectionStore;
  vectors: VectorStore;
  catalog: IndexCatalog;
  embedder: Embedder;
  /** The model's window in tokens, special tokens included. */
  window: number;
  embedBatch: number;
}

export function collectionUpsertHandler(deps: CollectionUpsertDeps): Handler<typeof collectionUpsert> {
  return async (input, ctx) => {
    const coll = await deps.collections.get(input.collectionId);
    if (!coll) throw new JobFailure('HANDLER_FAILED', `collection ${input.collectionId} does not exist (deleted?)`);
    const model = await deps.embedder.describe(coll.embed_model, ctx.signal);
    const identity = { model: model.model, digest: model.digest, dimensions: model.dimensions, chunker: passagesVersion(deps.window) };
    const gen = await deps.catalog.ensure(coll.id, identity, collectionTablePrefix(coll.id));
    const table = await deps.vectors.table(collectionTableSpec(gen, coll.fields));
    const counter = tokenCounter(model.tokenizer);
    const budget = Math.min(deps.window, model.contextLength) - 2;

    const rows: Omit<VectorRow, 'vector'>[] = [];
    // The last occurrence of an id in the batch wins, as a sequence of upserts would.
    const docs = [...new Map(input.documents.map((d) => [d.id, d])).values()];
    for (const doc of docs) {
      const fields: Record<string, unknown> = {};
      for (const [name, type] of Object.entries(coll.fields)) {
        const v = doc.metadata?.[name];
        if (v !== undefined && !fitsFieldType(type, v)) throw new JobFailure('HANDLER_FAILED', `document "${doc.id}": metadata.${name} is not a ${type}`);
        fields[metadataColumn(name)] = v ?? null;
      }
      for (const p of splitPassages(doc.text, counter, budget)) {
        rows.push({
          id: passageRowId(doc.id, p.index),
          scope: coll.id,
          text: p.text,
          contentHash: hash('sha256', p.text, 'hex'),
          fields: { doc_id: doc.id, passage: p.index, ...fields } as VectorRow['fields'],
        });
      }
    }
    const known = await table.vectorsByHash(rows.map((r) => r.contentHash));
    const missing = [...new Map(rows.filter((r) => !known.has(r.contentHash)).map((r) => [r.contentHash, r.text])).entries()];
    ctx.progress({ done: 0, total: missing.length });
    const vectors = new Map(known);
    if (missing.length) {
      const { vectors: embedded } = await deps.embedder.embed(
        model.model,
        missing.map(([, t]) => t),
        {
          signal: ctx.signal,
          batchSize: deps.embedBatch,
          onProgress: (done) => ctx.progress({ done, total: missing.length }),
        },
      );
      missing.forEach(([h], i) => vectors.set(h, embedded[i]!));
    }
    if (ctx.signal.aborted) throw ctx.signal.reason;
    await table.upsert(
      rows.map((r) => ({ ...r, vector: vectors.get(r.contentHash)! })),
      { replace: { scope: coll.id, field: 'doc_id', values: docs.map((d) => d.id) } },
    );
    // A delete of the collection that ran meanwhile dropped its tables, maybe before this job opened one
    // again: leave nothing of it behind.
    if (!(await deps.collections.get(coll.id))) {
      const names = new Set([gen.tableName, ...(await deps.catalog.removeCollection(coll.id)).map((g) => g.tableName)]);
      for (const name of names) await deps.vectors.dropTable(name);
      throw new JobFailure('HANDLER_FAILED', `collection ${coll.id} was deleted during the upsert`);
    }
    await table.maintain();
    return {
      collectionId: coll.id,
      generation: gen.id,
      documents: docs.length,
      passages: rows.length,
      embedded: missing.length,
      reused: rows.length - rows.filter((r) => !known.has(r.contentHash)).length,
    };
  };
}
