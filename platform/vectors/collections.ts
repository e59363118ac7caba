/**
 * Generic document collections on the vector store (`vector_collections` in
 * Postgres, one LanceDB table per index generation). A document is split into
 * passages that fit the model's window (passages.ts); each passage is a row
 * with the document's id, its position, and the collection's declared
 * metadata fields as columns (`m_<name>`), so queries can prefilter on them.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../connections/index.ts';
import type { Generation } from './catalog.ts';
import type { FieldType, TableSpec } from './schema.ts';

export interface CollectionRow {
  id: string;
  owner_id: string;
  name: string;
  description: string | null;
  fields: Record<string, FieldType>;
  embed_model: string;
  created_at: Date;
  updated_at: Date;
}

/** The passage splitter's part of a collection index's identity. */
export function passagesVersion(window: number): string {
  return `passages-v1/w${window}`;
}

/** Table-name prefix of a collection's generations. */
export function collectionTablePrefix(collectionId: string): string {
  return `col_${collectionId.replaceAll('-', '')}`;
}

export const metadataColumn = (field: string) => `m_${field}`;

export function collectionTableSpec(gen: Pick<Generation, 'tableName' | 'identity'>, fields: Record<string, FieldType>): TableSpec {
  return {
    name: gen.tableName,
    dimensions: gen.identity.dimensions,
    fields: { doc_id: 'string', passage: 'int', ...Object.fromEntries(Object.entries(fields).map(([k, t]) => [metadataColumn(k), t])) },
  };
}

export function passageRowId(docId: string, passage: number): string {
  return createHash('sha256').update(`${docId}\0${passage}`).digest('hex').slice(0, 32);
}

export function createCollectionStore(db: Db) {
  const table = () => db<CollectionRow>('vector_collections');
  return {
    async insert(row: Pick<CollectionRow, 'id' | 'owner_id' | 'name' | 'description' | 'fields' | 'embed_model'>): Promise<CollectionRow | undefined> {
      const [r] = await table()
        .insert({ ...row, fields: JSON.stringify(row.fields) as never })
        .onConflict(['owner_id', 'name'])
        .ignore()
        .returning('*');
      return r;
    },
    get(id: string): Promise<CollectionRow | undefined> {
      return table().where({ id }).first();
    },
    list(ownerId?: string): Promise<CollectionRow[]> {
      const q = table().orderBy('created_at', 'desc');
      if (ownerId !== undefined) q.where({ owner_id: ownerId });
      return q;
    },
    async remove(id: string): Promise<boolean> {
      return (await table().where({ id }).delete()) > 0;
    },
  };
}

export type CollectionStore = ReturnType<typeof createCollectionStore>;
