/**
 * Child-process half of "searches log no LanceDB warning" (tests/vectors/store.test.ts): one table
 * with its ANN index, maintained (index statistics read), one search in each mode, with lance's log level at warn (the parent sets LANCEDB_LOG). Whatever
 * lance says goes to this process's stderr, which the parent reads.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openVectorStore } from '../../platform/vectors/index.ts';

const dir = await mkdtemp(join(tmpdir(), 'parley-quiet-'));
// An ANN index from the first rows, so maintenance reads its statistics (lance warned there too).
const store = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0, vectorIndexMinRows: 1 } });
try {
  const t = await store.table({ name: 'quiet', dimensions: 4, fields: { path: 'string' } as const });
  await t.upsert(
    Array.from({ length: 12 }, (_, i) => ({
      id: `r${i}`,
      scope: 's',
      text: `parse the config file ${i}`,
      contentHash: `h${i}`,
      vector: [1, i, 0, 0],
      fields: { path: `f${i}.ts` },
    })),
  );
  await t.maintain();
  for (const mode of ['vector', 'text', 'hybrid'] as const) {
    const hits = await t.search({ scopes: ['s'], mode, vector: [1, 2, 0, 0], text: 'config', limit: 3 });
    process.stdout.write(`${mode} ${hits.length}\n`);
  }
} finally {
  store.close();
  await rm(dir, { recursive: true, force: true });
}
