/**
 * Vector collection use cases: documents that are not code, on the same
 * vector store as the code index. The owner (and `collections:any`) may read
 * and write a collection; anyone else gets NOT_FOUND.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../platform/config.ts';
import { servingGeneration, submitJob, type SubmitDeps } from '../../platform/code/index.ts';
import {
  canonicalModel,
  collectionTablePrefix,
  fitsFieldType,
  metadataColumn,
  type CollectionRow,
  type CollectionStore,
  type Embedder,
  type Generation,
  type IndexCatalog,
  type VectorStore,
  type Where,
} from '../../platform/vectors/index.ts';
import {
  collectionUpsert,
  vectorsMaintain,
  canonicalModelName,
  type Collection,
  type CollectionQuery,
  type CollectionResults,
  type CreateCollection,
  type DocumentInput,
  type FieldType,
  type SubmittedJob,
} from '../../shared/index.ts';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import { can, type Actor } from '../auth/permissions.ts';
import { AppError } from './errors.ts';
import { links, refusal } from './jobs.ts';

export interface CollectionDeps {
  config: Config;
  collections: CollectionStore;
  catalog: IndexCatalog;
  vectors: VectorStore;
  embedder: Embedder;
  submit: SubmitDeps;
  /** Job records: the state of a maintenance job a repeated request answers with. */
  jobs: Pick<JobLifecycle, 'get'>;
}

async function owned(deps: CollectionDeps, actor: Actor, id: string): Promise<CollectionRow> {
  const row = await deps.collections.get(id);
  if (!row || (row.owner_id !== actor.userId && !can(actor, 'collections:any'))) throw new AppError('NOT_FOUND', { detail: 'No such collection' });
  return row;
}

const identity = (gen: Generation) => ({
  generation: gen.id,
  identity: { model: gen.identity.model, digest: gen.identity.digest, dimensions: gen.identity.dimensions, chunker: gen.identity.chunker },
});

/**
 * Runs a read of `row`'s tables; when it fails because a delete removed them meanwhile (a closed
 * table, files gone), answers NOT_FOUND, as if the delete had come first. Any other failure stands.
 */
async function whileItExists<T>(deps: CollectionDeps, row: CollectionRow, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (!(await deps.collections.get(row.id))) throw new AppError('NOT_FOUND', { detail: 'No such collection (it was deleted)' });
    throw err;
  }
}

async function toView(deps: CollectionDeps, row: CollectionRow): Promise<Collection> {
  return whileItExists(deps, row, () => view(deps, row));
}

async function view(deps: CollectionDeps, row: CollectionRow): Promise<Collection> {
  const gen = await deps.catalog.serving(row.id);
  const table = gen ? await deps.vectors.existing(gen.tableName) : undefined;
  return {
    id: row.id,
    owner: row.owner_id,
    name: row.name,
    description: row.description,
    fields: row.fields,
    model: row.embed_model,
    passages: table ? await table.count([row.id]) : 0,
    index: gen ? identity(gen) : null,
    createdAt: row.created_at.toISOString(),
  };
}

export async function createCollection(deps: CollectionDeps, actor: Actor, body: CreateCollection): Promise<Collection> {
  const model = canonicalModel(body.model ?? deps.config.ollama.embedModel);
  const cap = deps.config.roleCaps[actor.role];
  if (cap.models !== '*' && !cap.models.some((m) => canonicalModelName(m) === canonicalModelName(model))) {
    throw new AppError('LIMIT_EXCEEDED', {
      detail: `Model "${model}" is not allowed for the ${actor.role} role`,
      errors: [{ path: 'model', message: `allowed: ${cap.models.join(', ')}` }],
      extra: { cap: 'models', limit: cap.models.join(', ') },
    });
  }
  try {
    await deps.embedder.describe(model);
  } catch {
    throw new AppError('VALIDATION_FAILED', { detail: `Model "${model}" is not installed in Ollama`, errors: [{ path: 'model', message: 'not installed' }] });
  }
  const row = await deps.collections.insert({
    id: randomUUID(),
    owner_id: actor.userId,
    name: body.name,
    description: body.description ?? null,
    fields: body.fields,
    embed_model: model,
  });
  if (!row) throw new AppError('INVALID_STATE', { detail: `You already have a collection named "${body.name}"` });
  return toView(deps, row);
}

export async function listCollections(deps: CollectionDeps, actor: Actor): Promise<{ items: Collection[] }> {
  const rows = await deps.collections.list(can(actor, 'collections:any') ? undefined : actor.userId);
  // A collection deleted while the list is read is left out, as it would be a moment later.
  const views = await Promise.all(
    rows.map((r) =>
      toView(deps, r).catch((err: unknown) => {
        if (err instanceof AppError && err.code === 'NOT_FOUND') return undefined;
        throw err;
      }),
    ),
  );
  return { items: views.filter((v): v is Collection => v !== undefined) };
}

export async function getCollection(deps: CollectionDeps, actor: Actor, id: string): Promise<Collection> {
  return toView(deps, await owned(deps, actor, id));
}

/**
 * Removes the collection and every generation's table. The record goes first, so a read from then
 * on answers NOT_FOUND, also one that fails on a table being dropped under it (whileItExists). An
 * upsert job running meanwhile checks the record after its write and drops what it wrote; what a
 * delete stopped part-way leaves, `vectors.maintain` removes (a generation whose collection is gone).
 */
export async function deleteCollection(deps: CollectionDeps, actor: Actor, id: string): Promise<void> {
  const row = await owned(deps, actor, id);
  if (!(await deps.collections.remove(row.id))) throw new AppError('NOT_FOUND', { detail: 'No such collection' });
  servingByCollection.delete(row.id);
  await dropCollectionTables(deps, row.id);
}

/** The collection's generations out of the catalog, and every table named with its prefix dropped. */
export async function dropCollectionTables(deps: Pick<CollectionDeps, 'catalog' | 'vectors'>, collectionId: string): Promise<void> {
  const names = new Set((await deps.catalog.removeCollection(collectionId)).map((g) => g.tableName));
  const prefix = collectionTablePrefix(collectionId);
  for (const name of await deps.vectors.tableNames()) if (name.startsWith(prefix)) names.add(name);
  for (const name of names) await deps.vectors.dropTable(name);
}

function checkMetadata(fields: Record<string, FieldType>, docs: readonly DocumentInput[]): void {
  const errors: { path: string; message: string }[] = [];
  docs.forEach((d, i) => {
    for (const [k, v] of Object.entries(d.metadata ?? {})) {
      // Own fields only: `__proto__` or `constructor` must not find Object.prototype's.
      const type = Object.hasOwn(fields, k) ? fields[k] : undefined;
      if (!type) {
        errors.push({ path: `documents.${i}.metadata.${k}`, message: `not a field of this collection; fields: ${Object.keys(fields).join(', ') || '(none)'}` });
        continue;
      }
      if (!fitsFieldType(type, v)) errors.push({ path: `documents.${i}.metadata.${k}`, message: `expected ${type}` });
    }
  });
  if (errors.length) throw new AppError('VALIDATION_FAILED', { detail: "Some metadata does not match the collection's fields", errors: errors.slice(0, 50) });
}

/** Accepts the documents as a `collection.upsert` job (202). */
export async function upsertDocuments(deps: CollectionDeps, actor: Actor, id: string, documents: DocumentInput[]): Promise<SubmittedJob> {
  const row = await owned(deps, actor, id);
  checkMetadata(row.fields, documents);
  let job;
  try {
    job = await submitJob(deps.submit, collectionUpsert, { collectionId: row.id, documents }, { ownerId: actor.userId });
  } catch (err) {
    // The lifecycle's refusals as the API answers them everywhere (NOT_ACCEPTED: 503); anything else is a fault.
    throw refusal(err, 'The queue could not take the job; nothing was accepted. Retry later.');
  }
  return { id: job.id, kind: job.kind, state: 'queued', links: links(job.id) };
}

const servingByCollection = new Map<string, () => Promise<Generation | undefined>>();

export async function queryCollection(deps: CollectionDeps, actor: Actor, id: string, q: CollectionQuery): Promise<CollectionResults> {
  const row = await owned(deps, actor, id);
  let serving = servingByCollection.get(row.id);
  if (!serving) servingByCollection.set(row.id, (serving = servingGeneration(deps.catalog, row.id)));
  const gen = await serving();
  if (!gen) return { items: [], mode: q.mode, index: null };
  const where: Record<string, Where[string]> = {};
  for (const [k, cond] of Object.entries(q.where ?? {})) {
    if (!Object.hasOwn(row.fields, k))
      throw new AppError('VALIDATION_FAILED', {
        errors: [{ path: `where.${k}`, message: `not a field of this collection; fields: ${Object.keys(row.fields).join(', ') || '(none)'}` }],
      });
    where[metadataColumn(k)] = cond as Where[string];
  }
  return whileItExists(deps, row, () => search(deps, row, gen, where, q));
}

async function search(
  deps: CollectionDeps,
  row: CollectionRow,
  gen: Generation,
  where: Record<string, Where[string]>,
  q: CollectionQuery,
): Promise<CollectionResults> {
  // Opened, never created: a query racing the collection's delete must not leave a table behind.
  const table = await deps.vectors.existing(gen.tableName);
  if (!table) {
    if (!(await deps.collections.get(row.id))) throw new AppError('NOT_FOUND', { detail: 'No such collection (it was deleted)' });
    return { items: [], mode: q.mode, index: identity(gen) };
  }
  let mode = q.mode;
  let degraded: string | undefined;
  let vector: Float32Array | undefined;
  if (mode !== 'text') {
    const model = await deps.embedder.describe(gen.identity.model).catch(() => undefined);
    if (!model || model.digest !== gen.identity.digest) {
      degraded = `the collection's embedding model ${gen.identity.model} changed or is unavailable: text search until its rebuild switches over`;
      mode = 'text';
    } else vector = await deps.embedder.embedQuery(gen.identity.model, q.text);
  }
  let hits;
  try {
    hits = await table.search({ scopes: [row.id], where, mode, text: q.text, limit: q.limit, ...(vector ? { vector } : {}) });
  } catch (err) {
    if ((err as Error).name === 'FilterError')
      throw new AppError('VALIDATION_FAILED', { detail: (err as Error).message, errors: [{ path: 'where', message: (err as Error).message }] });
    throw err;
  }
  return {
    items: hits.map((h) => ({
      id: h.fields.doc_id as string,
      passage: h.fields.passage as number,
      text: h.text,
      score: h.score,
      metadata: Object.fromEntries(Object.keys(row.fields).map((k) => [k, h.fields[metadataColumn(k)] ?? null])),
    })),
    mode,
    index: identity(gen),
    ...(degraded ? { degraded } : {}),
  };
}

/**
 * Runs vector maintenance now (what `vectors.maintain` does every
 * PARLEY_VECTORS_MAINTAIN_INTERVAL_S): after an embedding model change, say,
 * rather than waiting for the next round. Requests of one caller within a
 * minute answer with the same job.
 */
export async function maintainVectorsNow(deps: CollectionDeps, actor: Actor): Promise<{ job: SubmittedJob; existing: boolean }> {
  const period = Math.floor(Date.now() / 60_000);
  let submitted;
  try {
    submitted = await submitJob(deps.submit, vectorsMaintain, { period }, { ownerId: actor.userId, key: `vectors.maintain:now:${period}:by:${actor.userId}` });
  } catch (err) {
    throw refusal(err, 'The queue could not take the job; nothing was accepted. Retry later.');
  }
  const state = submitted.created ? 'queued' : ((await deps.jobs.get(submitted.id))?.state ?? 'queued');
  return { job: { id: submitted.id, kind: submitted.kind, state, links: links(submitted.id) }, existing: !submitted.created };
}
