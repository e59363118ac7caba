/**
 * Index generations, recorded in Postgres (`vector_indexes`).
 *
 * An index's identity is what makes its vectors comparable: the embedding
 * model, its digest, its dimensions and the chunker version. Each identity
 * of a collection gets its own LanceDB table, a *generation*:
 *
 *   building ──promote──▶ serving ──(next promote)──▶ retired ──drop──▶ (gone)
 *
 * At most one generation of a collection serves (a unique partial index
 * says so). Queries read the serving one only, and embed the query with its
 * model, so a query never mixes two embedding spaces. A new identity builds
 * beside it while it keeps serving; `promote` switches both in one
 * transaction. The first generation of a collection serves at once.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Db } from '../connections/index.ts';

export interface IndexIdentity {
  /** Ollama's canonical model name. */
  model: string;
  digest: string;
  dimensions: number;
  /** The chunker's version (chunk boundaries and headers change what is embedded). */
  chunker: string;
}

export type GenerationState = 'building' | 'serving' | 'retired';

export interface Generation {
  id: string;
  collection: string;
  identity: IndexIdentity;
  identityHash: string;
  tableName: string;
  state: GenerationState;
  createdAt: Date;
  servingAt: Date | null;
  retiredAt: Date | null;
}

interface Row {
  id: string;
  namespace: string;
  collection: string;
  identity: IndexIdentity;
  identity_hash: string;
  table_name: string;
  state: GenerationState;
  created_at: Date;
  serving_at: Date | null;
  retired_at: Date | null;
}

export function identityHash(identity: IndexIdentity): string {
  const canonical = JSON.stringify([identity.model, identity.digest, identity.dimensions, identity.chunker]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/**
 * The mark a namespace's table names carry. Deployments with different key prefixes may share one
 * vector store (a folder or a bucket); without it two of them built the same `code_<identity>` table,
 * and each one's orphan sweep dropped the other's tables as unreferenced.
 */
export function namespaceTag(namespace: string): string {
  return `n${createHash('sha256').update(namespace).digest('hex').slice(0, 10)}`;
}

export function sameIdentity(a: IndexIdentity, b: IndexIdentity): boolean {
  return identityHash(a) === identityHash(b);
}

const toGeneration = (r: Row): Generation => ({
  id: r.id,
  collection: r.collection,
  identity: r.identity,
  identityHash: r.identity_hash,
  tableName: r.table_name,
  state: r.state,
  createdAt: r.created_at,
  servingAt: r.serving_at,
  retiredAt: r.retired_at,
});

export function createIndexCatalog(db: Db, namespace: string) {
  const table = () => db<Row>('vector_indexes').where({ namespace });
  const tag = namespaceTag(namespace);
  return {
    /**
     * Whether this catalog named the table (for this namespace, in ensure()): the one test of what
     * maintenance may sweep. Tables named before the tag existed are nobody's, and are left alone.
     */
    owns(name: string): boolean {
      return name.includes(`_${tag}_`);
    },

    async serving(collection: string): Promise<Generation | undefined> {
      const r = await table().where({ collection, state: 'serving' }).first();
      return r && toGeneration(r);
    },

    async get(id: string): Promise<Generation | undefined> {
      const r = await table().where({ id }).first();
      return r && toGeneration(r);
    },

    async list(collection?: string): Promise<Generation[]> {
      const q = table().orderBy('created_at', 'asc');
      if (collection !== undefined) q.where({ collection });
      return (await q).map(toGeneration);
    },

    /**
     * The generation of `collection` for `identity`, made if missing: serving
     * when the collection has none yet, building otherwise. A retired one
     * for the same identity is brought back as building (its table is
     * dropped separately, so the caller rebuilds into a fresh table).
     */
    async ensure(collection: string, identity: IndexIdentity, tablePrefix: string): Promise<Generation> {
      const hash = identityHash(identity);
      return db.transaction(async (trx) => {
        // Serialise ensure() per collection: two racing first builds must not both serve.
        await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`vector_indexes:${namespace}:${collection}`]);
        const existing = await trx<Row>('vector_indexes').where({ namespace, collection, identity_hash: hash }).first();
        if (existing && existing.state !== 'retired') return toGeneration(existing);
        const serving = await trx<Row>('vector_indexes').where({ namespace, collection, state: 'serving' }).first();
        const state: GenerationState = serving ? 'building' : 'serving';
        // A retired generation of the same identity starts over under a new id (its files' records go
        // with the old row) and a new table name (its old table may be half dropped).
        if (existing) await trx<Row>('vector_indexes').where({ id: existing.id }).delete();
        const name = existing ? `${tablePrefix}_${tag}_${hash}_${Date.now().toString(36)}` : `${tablePrefix}_${tag}_${hash}`;
        const [r] = await trx<Row>('vector_indexes')
          .insert({
            id: randomUUID(),
            namespace,
            collection,
            identity: JSON.stringify(identity) as never,
            identity_hash: hash,
            table_name: name,
            state,
            serving_at: state === 'serving' ? (db.fn.now() as never) : null,
          })
          .returning('*');
        return toGeneration(r!);
      });
    },

    /** Makes a building generation the serving one; the previous serving one retires. One transaction. */
    async promote(id: string): Promise<{ promoted: Generation; retired?: Generation } | undefined> {
      return db.transaction(async (trx) => {
        const target = await trx<Row>('vector_indexes').where({ namespace, id }).forUpdate().first();
        if (!target || target.state !== 'building') return undefined;
        await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`vector_indexes:${namespace}:${target.collection}`]);
        const [retired] = await trx<Row>('vector_indexes')
          .where({ namespace, collection: target.collection, state: 'serving' })
          .update({ state: 'retired', retired_at: db.fn.now() as never })
          .returning('*');
        const [promoted] = await trx<Row>('vector_indexes')
          .where({ id })
          .update({ state: 'serving', serving_at: db.fn.now() as never })
          .returning('*');
        return { promoted: toGeneration(promoted!), ...(retired ? { retired: toGeneration(retired) } : {}) };
      });
    },

    /** Retired generations retired before `before`, whose tables may go. */
    async retiredBefore(before: Date): Promise<Generation[]> {
      return (await table().where({ state: 'retired' }).andWhere('retired_at', '<', before)).map(toGeneration);
    },

    /** Every table name the catalog references, in any state: other tables with our prefixes are garbage. */
    async tableNames(): Promise<Set<string>> {
      return new Set((await table().select('table_name')).map((r) => r.table_name));
    },

    async remove(id: string): Promise<void> {
      await table().where({ id }).delete();
    },

    async removeCollection(collection: string): Promise<Generation[]> {
      return (await table().where({ collection }).delete().returning('*')).map(toGeneration);
    },
  };
}

export type IndexCatalog = ReturnType<typeof createIndexCatalog>;
