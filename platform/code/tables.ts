/**
 * The code index's tables: one LanceDB table per generation (catalog
 * collection `code`), every repository's chunks in it, scoped by repository.
 * Each row has two representations: the chunk (header and code) and the
 * definition's name and signature in words; search fuses both.
 * Equal content in two repositories (a fork, a branch uploaded as another
 * repository) is embedded once when the second's owner may read the first
 * (their own, shared with them, public): the second reuses the first's
 * vector. Other owners' rows are never reused (workers/code/index-job.ts).
 */
import type { Generation, IndexIdentity, TableSpec } from '../vectors/index.ts';

export const codeCollection = 'code';

/**
 * The chunker's part of the index identity. Bump `code-vN` whenever chunk
 * boundaries, headers or the embedded text change: the index then rebuilds
 * into a new generation.
 */
export function chunkerVersion(window: number): string {
  return `code-v3/w${window}`;
}

export function codeTableSpec(gen: Pick<Generation, 'tableName' | 'identity'>): TableSpec {
  return {
    name: gen.tableName,
    dimensions: gen.identity.dimensions,
    fields: {
      path: 'string',
      language: 'string',
      kind: 'string',
      symbol: 'string',
      start_line: 'int',
      end_line: 'int',
      file_hash: 'string',
      part: 'int',
      /** sha256 of `name_text`'s source: the name vector is reused by it, as the chunk vector by content_hash. */
      name_hash: 'string',
    },
    // A definition's second representation, its name and signature in words (extract.ts `nameText`):
    // embedded (module code: its chunk vector again) and full-text indexed on its own.
    vectors: ['name_vector'],
    texts: ['name_text'],
  };
}

export function identityView(identity: IndexIdentity) {
  return { model: identity.model, digest: identity.digest, dimensions: identity.dimensions, chunker: identity.chunker };
}
