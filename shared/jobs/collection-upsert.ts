import { z } from 'zod';
import { defineJob } from './define.ts';

/**
 * A collection's field name: lower snake case. Metadata keys and filter keys follow it too, so a name no
 * field can have is refused by its shape (and `__proto__`, which an object would swallow, never reaches
 * the checks against the declared fields).
 */
const fieldNamePattern = /^[a-z][a-z0-9_]{0,40}$/;
export const FieldName = z.string().regex(fieldNamePattern, 'lower snake case, up to 41 characters');

/**
 * An object keyed by field names. The OpenAPI generator drops a record's key schema, so the document
 * would let any key through (a fuzzer's valid request was refused 400): the keys' rule is restated as
 * `propertyNames` in the schema's metadata, which the generator keeps.
 */
export function fieldRecord<V extends z.ZodType>(value: V) {
  return z.record(FieldName, value).meta({ propertyNames: { type: 'string', pattern: fieldNamePattern.source } });
}

export const DocumentInput = z
  .object({
    /** The document's id within its collection; an upsert with an existing id replaces the document. */
    id: z.string().min(1).max(256),
    text: z.string().min(1).max(200_000),
    /** Values of the collection's declared fields. */
    metadata: fieldRecord(z.union([z.string().max(4096), z.number(), z.boolean(), z.array(z.string().max(1024)).max(100), z.null()])).optional(),
  })
  .strict();
export type DocumentInput = z.infer<typeof DocumentInput>;

/** An `embed.batch`-style job: documents to passages to vectors, written to the collection in one commit. */
export const CollectionUpsertInput = z.object({
  collectionId: z.uuid().toLowerCase(),
  documents: z.array(DocumentInput).min(1).max(1000),
});
export type CollectionUpsertInput = z.infer<typeof CollectionUpsertInput>;

export const CollectionUpsertResult = z.object({
  collectionId: z.uuid().toLowerCase(),
  generation: z.uuid().toLowerCase(),
  documents: z.number().int(),
  passages: z.number().int(),
  embedded: z.number().int(),
  reused: z.number().int(),
});
export type CollectionUpsertResult = z.infer<typeof CollectionUpsertResult>;

export const collectionUpsert = defineJob({
  kind: 'collection.upsert',
  v: 1,
  queue: 'embed',
  input: CollectionUpsertInput,
  result: CollectionUpsertResult,
  progress: z.object({ done: z.number().int(), total: z.number().int() }),
  defaults: { priority: 'normal', attempts: 3, backoff: { baseMs: 500, maxMs: 15_000 } },
  metered: false,
  internal: true,
  summary: 'Upserts documents into a vector collection: passages that fit the model, embedded, written in one commit.',
});
