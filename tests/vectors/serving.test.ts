/**
 * Which index generation a query reads. The API caches the answer briefly,
 * but never "none yet": the job that builds the first generation ends when
 * it serves, and a query right after must find it, however soon that is.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servingGeneration } from '../../platform/code/search.ts';
import { connectDb, type Db } from '../../platform/connections/index.ts';
import { createIndexCatalog, namespaceTag } from '../../platform/vectors/index.ts';

let db: Db;
const namespace = `serving-${randomUUID().slice(0, 8)}`;
const identity = { model: 'all-minilm:latest', digest: 'd'.repeat(64), dimensions: 384, chunker: 'test-1' };

beforeAll(() => {
  db = connectDb(process.env.DATABASE_URL!, { pool: 2 });
});
afterAll(async () => {
  await db?.('vector_indexes')
    .where({ namespace })
    .delete()
    .catch(() => undefined);
  await db?.destroy();
});

describe('the serving generation', () => {
  it('is found by the first query after the first generation starts serving, with no wait for the cache', async () => {
    const catalog = createIndexCatalog(db, namespace);
    const collection = `coll-${randomUUID()}`;
    const serving = servingGeneration(catalog, collection);
    expect(await serving()).toBeUndefined();
    const gen = await catalog.ensure(collection, identity, 'serving_test');
    await catalog.promote(gen.id);
    expect((await serving())?.id).toBe(gen.id);
  });

  it('is read from the cache while one serves', async () => {
    const catalog = createIndexCatalog(db, namespace);
    const collection = `coll-${randomUUID()}`;
    const gen = await catalog.ensure(collection, identity, 'serving_test');
    await catalog.promote(gen.id);
    const serving = servingGeneration(catalog, collection);
    const first = serving();
    expect(serving()).toBe(first);
    expect((await first)?.id).toBe(gen.id);
  });
});

describe('generation tables of two namespaces sharing one vector store', () => {
  it('have different names for the same collection and identity, and each namespace sweeps only its own', async () => {
    const other = `${namespace}-b`;
    const a = createIndexCatalog(db, namespace);
    const b = createIndexCatalog(db, other);
    try {
      const ga = await a.ensure('code', identity, 'code');
      const gb = await b.ensure('code', identity, 'code');
      expect(ga.tableName).not.toBe(gb.tableName);
      expect(ga.tableName).toContain(namespaceTag(namespace));
      expect(a.owns(ga.tableName)).toBe(true);
      expect(a.owns(gb.tableName)).toBe(false);
      expect(b.owns(ga.tableName)).toBe(false);
      // A name from before the tag: nobody's to sweep.
      expect(a.owns(`code_${ga.identityHash}`)).toBe(false);
    } finally {
      await db('vector_indexes').where({ namespace: other }).delete();
    }
  });
});
