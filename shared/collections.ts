/**
 * Vector collections over HTTP: documents that are not code, stored and
 * searched on the same vector store (docs/vectors.md).
 */
import { z } from 'zod';
import { ModelName } from './model-name.ts';
import { nonBlank } from './params.ts';
import { DocumentInput, fieldRecord } from './jobs/collection-upsert.ts';

export const FieldType = z.enum(['string', 'int', 'float', 'bool', 'string[]']);
export type FieldType = z.infer<typeof FieldType>;

export const CollectionName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit');

export const CreateCollection = z
  .object({
    name: CollectionName,
    description: z.string().max(2000).optional(),
    /** Metadata fields documents may carry and queries may filter on. */
    fields: fieldRecord(FieldType)
      .default({})
      .refine((f) => Object.keys(f).length <= 32, 'at most 32 fields'),
    /**
     * The embedding model: an Ollama model name (shared/model-name.ts, as llm.chat's and embed.batch's
     * `model`), so a malformed one is 400 at the edge like theirs. @defaultValue the configured embedding model
     */
    model: ModelName.optional(),
  })
  .strict();
export type CreateCollection = z.infer<typeof CreateCollection>;

export const Collection = z.object({
  id: z.uuid().toLowerCase(),
  owner: z.uuid().toLowerCase(),
  name: z.string(),
  description: z.string().nullable(),
  fields: z.record(z.string(), FieldType),
  model: z.string(),
  /** Passages stored (a long document is several). */
  passages: z.number().int(),
  index: z
    .object({
      generation: z.uuid().toLowerCase(),
      identity: z.object({ model: z.string(), digest: z.string(), dimensions: z.number().int(), chunker: z.string() }),
    })
    .nullable(),
  createdAt: z.iso.datetime(),
});
export type Collection = z.infer<typeof Collection>;

export const CollectionList = z.object({ items: z.array(Collection) });

export const UpsertDocuments = z.object({ documents: z.array(DocumentInput).min(1).max(1000) }).strict();

export const FilterValue = z.union([z.string().max(4096), z.number(), z.boolean()]);
/** A field's condition: a value (equality), { in }, a range, { prefix } for strings, { has } for lists. */
export const FilterCondition = z.union([
  FilterValue,
  z.object({ in: z.array(FilterValue).max(1000) }).strict(),
  z.object({ gt: z.number().optional(), gte: z.number().optional(), lt: z.number().optional(), lte: z.number().optional() }).strict(),
  z.object({ prefix: z.string().max(1024) }).strict(),
  z.object({ has: z.string().max(1024) }).strict(),
]);

export const CollectionQuery = z
  .object({
    text: nonBlank(4000),
    mode: z.enum(['vector', 'text', 'hybrid']).default('hybrid'),
    /** Conditions on declared fields, all of which must hold; applied before ranking. */
    where: fieldRecord(FilterCondition).optional(),
    limit: z.number().int().min(1).max(100).default(10),
  })
  .strict();
export type CollectionQuery = z.infer<typeof CollectionQuery>;

export const CollectionHit = z.object({
  /** The document's id. */
  id: z.string(),
  /** Which passage of the document matched (0-based). */
  passage: z.number().int(),
  text: z.string(),
  score: z.number(),
  metadata: z.record(z.string(), z.unknown()),
});

export const CollectionResults = z.object({
  items: z.array(CollectionHit),
  mode: z.enum(['vector', 'text', 'hybrid']),
  index: z
    .object({
      generation: z.uuid().toLowerCase(),
      identity: z.object({ model: z.string(), digest: z.string(), dimensions: z.number().int(), chunker: z.string() }),
    })
    .nullable(),
  degraded: z.string().optional(),
});
export type CollectionResults = z.infer<typeof CollectionResults>;
