/**
 * Code search over the serving generation of the code index.
 *
 * The generation decides everything about the query's embedding space: the
 * query is embedded with its model, and only its table is read, so a query
 * never mixes two spaces. When that model's digest in Ollama no longer
 * matches the generation's (the model was re-pulled or re-created under the
 * same name), the query cannot be embedded in the index's space at all:
 * vector and hybrid searches fall back to text search and say so, until the
 * rebuild under the new identity takes over.
 *
 * Filters are prefilters: `repository` (the caller's readable repositories
 * only, decided by the API), `language`, `kind` and a `path` prefix narrow
 * the candidates before ranking, so they never empty the top k.
 */
import type { CodeSearchHit, CodeSearchQuery, CodeSearchResults } from '../../shared/index.ts';
import type { Embedder, Generation, IndexCatalog, VectorStore, Where } from '../vectors/index.ts';
import { codeCollection, codeTableSpec, identityView } from './tables.ts';

export interface CodeSearchDeps {
  vectors: VectorStore;
  catalog: IndexCatalog;
  embedder: Embedder;
}

/**
 * How a search combines the two representations of each chunk (its code and
 * its name-and-signature, tables.ts) and, in hybrid mode, the vector and the
 * full-text side. bench/codebench chose the defaults on its dev split.
 */
export interface Fusion {
  /** Vector search: the RRF constant fusing the name-vector and the chunk-vector rankings. */
  k: number;
  /** Vector search: the weights of the name-vector and the chunk-vector rankings. */
  vectors: { name: number; chunk: number };
  /**
   * Hybrid search: the three lists (name vectors, chunk vectors, full text) fused by rank (`rrf`,
   * with its constant `k`) or by their min-max normalised scores (`minmax`, platform/vectors/rrf.ts),
   * each list with its weight.
   */
  hybrid: { method: 'rrf' | 'minmax'; k: number; vectors: { name: number; chunk: number }; text: number };
  /** Text side: boost of the name-and-signature column over the chunk's text. */
  nameBoost: number;
  /** Candidates taken from each list before fusion, as a multiple of the limit (at least 50). */
  depth: number;
}

/**
 * Chosen on bench/codebench's dev split (docs/code-search.md has the grid). The chunk vectors keep a
 * weight of at least 0.25 by rule: the benchmark asks docstring questions, which names answer best, but
 * a question about what code does must still reach its body.
 */
export const defaultFusion: Fusion = {
  k: 5,
  vectors: { name: 1, chunk: 0.25 },
  hybrid: { method: 'minmax', k: 5, vectors: { name: 1, chunk: 0.5 }, text: 1 },
  nameBoost: 4,
  depth: 4,
};

export interface CodeSearchRequest extends Omit<CodeSearchQuery, 'repository'> {
  repositoryIds: readonly string[];
  /** A query vector computed elsewhere (benchmarks); skips embedding. */
  vector?: Float32Array;
  /** Overrides the fusion settings (benchmarks tune them on their dev split). */
  fusion?: Partial<Fusion>;
  signal?: AbortSignal;
}

const snippetChars = 1200;
const servingTtlMs = 2000;

/**
 * The serving generation, cached briefly: a switch is seen within
 * `servingTtlMs`, and until then the old generation, whose table outlives
 * the switch by the retirement grace, keeps answering in its own space.
 * "No generation yet" is never cached: the first index job ends when its
 * generation serves, and a query right after it must find it (a collection
 * queried empty, filled, and queried again within the TTL answered nothing).
 */
export function servingGeneration(catalog: IndexCatalog, collection = codeCollection): () => Promise<Generation | undefined> {
  let cached: { at: number; gen: Promise<Generation | undefined> } | undefined;
  return () => {
    if (!cached || Date.now() - cached.at > servingTtlMs) {
      const gen = catalog.serving(collection);
      const entry = { at: Date.now(), gen };
      cached = entry;
      // Forget a failure or an empty answer, unless a newer lookup has replaced this one already.
      const forget = () => {
        if (cached === entry) cached = undefined;
      };
      gen.then((g) => g === undefined && forget(), forget);
    }
    return cached.gen;
  };
}

export function createCodeSearch(deps: CodeSearchDeps, fusionDefaults: Fusion = defaultFusion) {
  const serving = servingGeneration(deps.catalog);
  return async function searchCode(req: CodeSearchRequest): Promise<CodeSearchResults> {
    const gen = await serving();
    if (!gen) return { items: [], mode: req.mode, index: null };
    const table = await deps.vectors.table(codeTableSpec(gen));
    let mode = req.mode;
    let degraded: string | undefined;
    let vector = req.vector;
    if (mode !== 'text' && !vector) {
      const model = await deps.embedder.describe(gen.identity.model, req.signal).catch(() => undefined);
      if (!model || model.digest !== gen.identity.digest) {
        degraded = model
          ? `the index was built with ${gen.identity.model} at digest ${gen.identity.digest.slice(0, 12)}, and Ollama now has ${model.digest.slice(0, 12)}: text search until the rebuild switches over`
          : `the index's embedding model ${gen.identity.model} is not available in Ollama: text search only`;
        mode = 'text';
      } else {
        vector = await deps.embedder.embedQuery(gen.identity.model, req.q, req.signal);
      }
    }
    const where: Record<string, Where[string]> = {};
    if (req.language) where.language = req.language;
    if (req.kind) where.kind = req.kind;
    if (req.path) where.path = { prefix: req.path };
    const fusion = { ...fusionDefaults, ...req.fusion };
    const hits = await table.search({
      scopes: req.repositoryIds,
      where,
      mode,
      text: req.q,
      limit: req.limit,
      ...(mode === 'hybrid'
        ? {
            rrfK: fusion.hybrid.k,
            fuse: fusion.hybrid.method,
            weights: { vector: 1, text: fusion.hybrid.text },
            vectorColumns: { name_vector: fusion.hybrid.vectors.name, vector: fusion.hybrid.vectors.chunk },
          }
        : { rrfK: fusion.k, vectorColumns: { name_vector: fusion.vectors.name, vector: fusion.vectors.chunk } }),
      candidates: Math.max(50, req.limit * fusion.depth),
      textColumns: { search_text: 1, name_text: fusion.nameBoost },
      ...(vector ? { vector } : {}),
      fields: ['path', 'language', 'kind', 'symbol', 'start_line', 'end_line'],
    });
    const items: CodeSearchHit[] = hits.map((h) => ({
      repository: h.scope,
      path: h.fields.path as string,
      language: h.fields.language as CodeSearchHit['language'],
      symbol: (h.fields.symbol as string | null) ?? null,
      kind: h.fields.kind as CodeSearchHit['kind'],
      startLine: h.fields.start_line as number,
      endLine: h.fields.end_line as number,
      score: h.score,
      snippet: h.text.length > snippetChars ? `${h.text.slice(0, snippetChars)}…` : h.text,
    }));
    return { items, mode, index: { generation: gen.id, identity: identityView(gen.identity) }, ...(degraded ? { degraded } : {}) };
  };
}

export type CodeSearch = ReturnType<typeof createCodeSearch>;
