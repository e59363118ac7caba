/**
 * The vector store on S3-compatible object storage: a real MinIO (built from
 * the Go module proxy by scripts/services/build.ts), configured the way an
 * operator would, through PARLEY_LANCEDB_URI and PARLEY_LANCEDB_S3_*. The
 * vector table's whole contract runs on it (tests/vectors/table-suite.ts),
 * then two stores opened on the same URI, as two worker processes would,
 * share one index.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../platform/config.ts';
import { openVectorStore } from '../../platform/vectors/index.ts';
import { startMinio, type Minio } from '../support/minio.ts';
import { vectorTableSuite } from './table-suite.ts';

let minio: Minio;
const bucket = 'parley-vectors';

beforeAll(async () => {
  minio = await startMinio();
  await minio.bucket(bucket);
}, 1_200_000); // a cold cache builds MinIO first

afterAll(async () => {
  await minio?.stop();
});

/** What api/main.ts and workers/main.ts pass to openVectorStore, from the operator's variables. */
function vectorsConfig(prefix: string) {
  return loadConfig({ PARLEY_LANCEDB_URI: `s3://${bucket}/${prefix}`, ...minio.env() }).vectors;
}

describe('configuration', () => {
  it('turns PARLEY_LANCEDB_S3_* into the object store options, http allowed only for an http endpoint', () => {
    const c = vectorsConfig('x');
    expect(c.uri).toBe(`s3://${bucket}/x`);
    expect(c.storageOptions).toEqual({
      aws_endpoint: minio.endpoint,
      allow_http: 'true',
      aws_access_key_id: minio.accessKey,
      aws_secret_access_key: minio.secretKey,
      aws_region: 'us-east-1',
    });
    expect(loadConfig({ PARLEY_LANCEDB_S3_ENDPOINT: 'https://s3.example.test' }).vectors.storageOptions).toEqual({
      aws_endpoint: 'https://s3.example.test',
      aws_region: 'us-east-1',
    });
    expect(loadConfig({}).vectors.storageOptions).toBeUndefined();
    // On AWS itself with an instance role: the region alone is passed on.
    expect(loadConfig({ PARLEY_LANCEDB_S3_REGION: 'eu-west-1' }).vectors.storageOptions).toEqual({ aws_region: 'eu-west-1' });
    expect(() => loadConfig({ PARLEY_LANCEDB_S3_ENDPOINT: 'ftp://x' })).toThrow(/PARLEY_LANCEDB_S3_ENDPOINT/);
  });
});

vectorTableSuite('MinIO', async () => {
  const c = vectorsConfig(`suite-${randomUUID().slice(0, 8)}`);
  const store = await openVectorStore({ uri: c.uri, storageOptions: c.storageOptions, maintenance: { versionRetentionMs: 0 } });
  return { store, close: async () => store.close() };
});

describe('many workers, one index', () => {
  it("lets a second store on the same URI read what the first wrote, and the first see the second's replacement", async () => {
    const c = vectorsConfig(`shared-${randomUUID().slice(0, 8)}`);
    const a = await openVectorStore({ uri: c.uri, storageOptions: c.storageOptions });
    const b = await openVectorStore({ uri: c.uri, storageOptions: c.storageOptions });
    try {
      const spec = { name: 'shared', dimensions: 4, fields: { path: 'string' } } as const;
      const ta = await a.table(spec);
      await ta.upsert([{ id: '1', scope: 's', text: 'parse the config file', contentHash: 'h1', vector: [1, 0, 0, 0], fields: { path: 'a.ts' } }]);
      const tb = await b.table(spec);
      const seen = await tb.search({ scopes: ['s'], mode: 'hybrid', vector: [1, 0, 0, 0], text: 'parse config', limit: 5 });
      expect(seen.map((h) => h.id)).toEqual(['1']);
      await tb.upsert([{ id: '2', scope: 's', text: 'render the page', contentHash: 'h2', vector: [0, 1, 0, 0], fields: { path: 'a.ts' } }], {
        replace: { scope: 's', field: 'path', values: ['a.ts'] },
      });
      const after = await ta.search({ scopes: ['s'], mode: 'hybrid', vector: [0, 1, 0, 0], text: 'render page', limit: 5 });
      expect(after.map((h) => h.id)).toEqual(['2']);
    } finally {
      a.close();
      b.close();
    }
  });
});
