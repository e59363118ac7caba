/**
 * The `code.index` handler: one repository into one index generation.
 *
 *   scan ─▶ diff against the generation's record ─▶ batches of changed files:
 *     extract (chunk pool) ─▶ reuse stored vectors by content hash ─▶ embed
 *     the rest (Ollama) ─▶ one LanceDB commit replacing those files' rows ─▶
 *     record the files and their symbols (Postgres)
 *   ─▶ remove deleted files ─▶ maintain the table's indexes ─▶ record the
 *   repository's state ─▶ promote a building generation once complete.
 *
 * Incremental by content: a file whose hash matches the record is not read
 * again, and a chunk whose text hash any row of the generation already has
 * (in any repository) is not embedded again.
 *
 * Crash-safe by construction: a batch is recorded in Postgres only after its
 * LanceDB commit, and a run always starts from the diff. A run killed mid
 * batch redoes that batch only, and when the kill fell between the commit and
 * the record, the batch's vectors are found by hash and not embedded again.
 * The result equals a clean build's because both converge on the same rows
 * for the same tree.
 *
 * The next batch is extracted while the current one embeds; the commit of a
 * batch happens before the next batch embeds, so at most one batch's work is
 * ever uncommitted.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  chunkerVersion,
  codeCollection,
  codeTableSpec,
  hashContent,
  repositoryTree,
  scanTree,
  type CodeStore,
  type FileMetadata,
  type IndexedFile,
  type TreeFile,
} from '../../platform/code/index.ts';
import { JobFailure } from '../../platform/jobs/index.ts';
import type { Embedder, Generation, IndexCatalog, VectorRow, VectorStore, VectorTable } from '../../platform/vectors/index.ts';
import { analyzeText, sameIdentity } from '../../platform/vectors/index.ts';
import type { CodeIndexProgress, CodeIndexResult, SourceFile, codeIndex } from '../../shared/index.ts';
import type { Handler, HandlerContext } from '../runtime/handler.ts';
import type { ExtractedFile, ExtractOptions } from './extract.ts';

export interface CodeIndexConfig {
  dir: string;
  roots: readonly string[];
  embedModel: string;
  embedWindow: number;
  embedBatch: number;
  batchBytes: number;
  maxFileBytes: number;
  maxFiles: number;
}

export interface Extractor {
  extract(files: readonly SourceFile[], options: ExtractOptions, signal?: AbortSignal): Promise<ExtractedFile[]>;
}

export interface CodeIndexDeps {
  store: CodeStore;
  vectors: VectorStore;
  catalog: IndexCatalog;
  embedder: Embedder;
  pool: Extractor;
  config: CodeIndexConfig;
}

/** Row ids: stable for unchanged content at the same path, whatever moved around it. */
function rowId(repositoryId: string, path: string, contentHash: string, occurrence: number): string {
  return createHash('sha256').update(`${repositoryId}\0${path}\0${contentHash}\0${occurrence}`).digest('hex').slice(0, 32);
}

/** Changed files in batches of about `batchBytes`, in path order. */
function batches(files: readonly TreeFile[], batchBytes: number): TreeFile[][] {
  const out: TreeFile[][] = [];
  let current: TreeFile[] = [];
  let size = 0;
  for (const f of files) {
    if (current.length && (size + f.bytes > batchBytes || current.length >= 100)) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(f);
    size += f.bytes;
  }
  if (current.length) out.push(current);
  return out;
}

interface PreparedBatch {
  files: TreeFile[];
  extracted: ExtractedFile[];
  /** Vectors already stored, by content hash. */
  known: Map<string, Float32Array>;
  /** Name vectors already stored, by name hash. */
  knownNames: Map<string, Float32Array>;
}

const nameHash = (text: string) => createHash('sha256').update(text).digest('hex');

/** Resolves the generation this run builds, checking it still matches the configured model. */
async function targetGeneration(deps: CodeIndexDeps, input: { generation?: string }, signal: AbortSignal) {
  const model = await deps.embedder.describe(deps.config.embedModel, signal);
  const identity = { model: model.model, digest: model.digest, dimensions: model.dimensions, chunker: chunkerVersion(deps.config.embedWindow) };
  let gen: Generation | undefined;
  if (input.generation) {
    gen = await deps.catalog.get(input.generation);
    if (!gen || gen.state === 'retired') throw new JobFailure('HANDLER_FAILED', `index generation ${input.generation} is gone or retired`);
    if (!sameIdentity(gen.identity, identity))
      throw new JobFailure(
        'HANDLER_FAILED',
        `index generation ${input.generation} no longer matches the configured model (${identity.model} at ${identity.digest.slice(0, 12)})`,
      );
  } else {
    gen = await deps.catalog.ensure(codeCollection, identity, 'code');
  }
  return { gen, model };
}

export function codeIndexHandler(deps: CodeIndexDeps): Handler<typeof codeIndex> {
  return async (input, ctx) => {
    const started = Date.now();
    const repo = await deps.store.getRepository(input.repositoryId);
    if (!repo) throw new JobFailure('HANDLER_FAILED', `repository ${input.repositoryId} does not exist (deleted?)`);
    if (repo.source.type === 'archive' && !repo.snapshot)
      throw new JobFailure('HANDLER_FAILED', 'no archive was uploaded for this repository yet: PUT /v1/code/repositories/:id/archive first');
    let root: string;
    try {
      root = await repositoryTree(repo.source, repo.id, { codeDir: deps.config.dir, roots: deps.config.roots });
    } catch (err) {
      throw new JobFailure('HANDLER_FAILED', err instanceof Error ? err.message : String(err));
    }
    const { gen, model } = await targetGeneration(deps, input, ctx.signal);
    const table = await deps.vectors.table(codeTableSpec(gen));
    const extractOptions: ExtractOptions = { maxTokens: Math.min(deps.config.embedWindow, model.contextLength) - 2, tokenizer: model.tokenizer };

    const progress: CodeIndexProgress = { phase: 'scanning', filesDone: 0, filesTotal: 0, chunksEmbedded: 0, chunksReused: 0, etaSeconds: null };
    let bytesTotal = 0;
    let bytesDone = 0;
    let indexingSince = 0;
    // The batch being embedded: its bytes, and the share of its chunks embedded so far, so the ETA moves within a batch.
    let inFlight = { bytes: 0, share: 0 };
    const report = () => {
      const done = bytesDone + inFlight.bytes * inFlight.share;
      if (progress.phase === 'indexing' && done > 0) {
        const rate = done / Math.max(1, Date.now() - indexingSince);
        progress.etaSeconds = Math.round((bytesTotal - done) / rate / 1000);
      }
      ctx.progress({ ...progress });
    };
    // Progress at least every second, whatever the batches are doing.
    const ticker = setInterval(report, 1000);
    try {
      report();
      const scan = await scanTree(root, { maxFileBytes: deps.config.maxFileBytes, maxFiles: deps.config.maxFiles, signal: ctx.signal }).catch(
        (err: unknown) => {
          if (ctx.signal.aborted) throw err;
          throw new JobFailure('HANDLER_FAILED', `could not scan the repository: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
      const recorded = await deps.store.files(repo.id, gen.id);
      const changed = scan.files.filter((f) => recorded.get(f.path)?.fileHash !== f.hash);
      const present = new Set(scan.files.map((f) => f.path));
      const removed = [...recorded.keys()].filter((p) => !present.has(p));
      // What earlier attempts of this same job committed: the files unchanged now beyond those unchanged when it began.
      const previous = await deps.store.indexState(repo.id, gen.id);
      const unchanged = scan.files.length - changed.length;
      const sameJob = previous?.job_id === ctx.jobId && previous.job_baseline !== null;
      const baseline = sameJob ? previous.job_baseline! : unchanged;
      const filesResumed = Math.max(0, unchanged - baseline);
      await deps.store.saveIndexState({
        repository_id: repo.id,
        index_id: gen.id,
        files: previous?.files ?? 0,
        chunks: previous?.chunks ?? 0,
        languages: previous?.languages ?? {},
        skipped: scan.skipped as Record<string, number>,
        job_id: ctx.jobId,
        job_baseline: baseline,
        indexed: previous?.indexed_at != null,
      });

      progress.phase = 'indexing';
      progress.filesTotal = changed.length;
      bytesTotal = changed.reduce((n, f) => n + f.bytes, 0);
      indexingSince = Date.now();
      const plan = batches(changed, deps.config.batchBytes);
      let chunksEmbedded = 0;
      let chunksReused = 0;
      let namesEmbedded = 0;

      const prepare = async (files: TreeFile[]): Promise<PreparedBatch> => {
        const sources: SourceFile[] = [];
        const kept: TreeFile[] = [];
        for (const f of files) {
          let content: Buffer;
          try {
            content = await readFile(join(root, f.path));
          } catch {
            continue; // Gone since the scan: the next run removes it.
          }
          kept.push({ ...f, hash: hashContent(content), bytes: content.length });
          sources.push({ path: f.path, language: f.language, content: content.toString('utf8') });
        }
        const extracted = sources.length ? await deps.pool.extract(sources, extractOptions, ctx.signal) : [];
        const known = await table.vectorsByHash(extracted.flatMap((e) => e.chunks.map((c) => c.contentHash)));
        const knownNames = await table.vectorsByHash(
          extracted.flatMap((e) => e.chunks.flatMap((c) => (c.nameText ? [nameHash(c.nameText)] : []))),
          { vector: 'name_vector', hash: 'name_hash' },
        );
        return { files: kept, extracted, known, knownNames };
      };

      let next = plan.length ? prepare(plan[0]!) : undefined;
      for (let b = 0; b < plan.length; b++) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const batch = await next!;
        // Extract the next batch while this one embeds.
        next = b + 1 < plan.length ? prepare(plan[b + 1]!) : undefined;
        next?.catch(() => {});
        const batchBytes = plan[b]!.reduce((n, f) => n + f.bytes, 0);
        inFlight = { bytes: batchBytes, share: 0 };
        const result = await embedAndWrite(deps, ctx, table, repo.id, batch, model.model, (n, of) => {
          progress.chunksEmbedded = chunksEmbedded + n;
          inFlight.share = of ? n / of : 0;
          report();
        });
        inFlight = { bytes: 0, share: 0 };
        chunksEmbedded += result.embedded;
        chunksReused += result.reused;
        namesEmbedded += result.names;
        const files: IndexedFile[] = batch.files.map((f, i) => ({
          path: f.path,
          fileHash: f.hash,
          language: f.language,
          bytes: f.bytes,
          chunks: batch.extracted[i]?.chunks.length ?? 0,
        }));
        const metadata: FileMetadata[] = batch.extracted.map((e, i) => ({
          path: e.path,
          language: e.language ?? batch.files[i]!.language,
          fileHash: batch.files[i]!.hash,
          imports: e.imports,
          symbols: e.symbols.map((s) => ({ ...s })),
        }));
        await deps.store.recordBatch(repo.id, gen.id, files, metadata);
        progress.filesDone += plan[b]!.length;
        progress.chunksEmbedded = chunksEmbedded;
        progress.chunksReused = chunksReused;
        bytesDone += batchBytes;
        report();
      }

      if (removed.length) {
        progress.phase = 'removing';
        report();
        await table.delete([repo.id], { path: { in: removed } });
        await deps.store.removeFiles(repo.id, gen.id, removed);
      }

      progress.phase = 'optimizing';
      progress.etaSeconds = 0;
      report();
      // Every index covers every row before the job ends (numUnindexedRows = 0).
      await table.maintain();

      const finalFiles = await deps.store.files(repo.id, gen.id);
      const languages: Record<string, number> = {};
      let chunks = 0;
      for (const f of finalFiles.values()) {
        languages[f.language] = (languages[f.language] ?? 0) + 1;
        chunks += f.chunks;
      }
      await deps.store.saveIndexState({
        repository_id: repo.id,
        index_id: gen.id,
        files: finalFiles.size,
        chunks,
        languages,
        skipped: scan.skipped as Record<string, number>,
        job_id: ctx.jobId,
        job_baseline: baseline,
        indexed: true,
      });
      const promoted = gen.state === 'building' ? await promoteIfComplete(deps, gen) : false;
      const result: CodeIndexResult = {
        repositoryId: repo.id,
        generation: gen.id,
        files: finalFiles.size,
        filesChanged: changed.length,
        filesRemoved: removed.length,
        filesResumed,
        chunks,
        chunksEmbedded,
        chunksReused,
        namesEmbedded,
        batches: plan.length,
        skipped: scan.skipped as Record<string, number>,
        promoted,
        durationMs: Date.now() - started,
      };
      return result;
    } finally {
      clearInterval(ticker);
    }
  };
}

/**
 * Embeds the batch's texts that no stored row has (chunk texts by content
 * hash, name texts by name hash), then commits the batch's files in one write.
 */
async function embedAndWrite(
  deps: CodeIndexDeps,
  ctx: HandlerContext<CodeIndexProgress>,
  table: VectorTable,
  repositoryId: string,
  batch: PreparedBatch,
  model: string,
  onEmbedded: (n: number, of: number) => void,
): Promise<{ embedded: number; reused: number; names: number }> {
  const missing = new Map<string, string>();
  const missingNames = new Map<string, string>();
  let reused = 0;
  for (const e of batch.extracted) {
    for (const c of e.chunks) {
      if (batch.known.has(c.contentHash)) reused++;
      else missing.set(c.contentHash, c.text);
      if (c.nameText) {
        const h = nameHash(c.nameText);
        if (!batch.knownNames.has(h)) missingNames.set(h, c.nameText);
      }
    }
  }
  const texts = [...missing.values(), ...missingNames.values()];
  const vectors = new Map(batch.known);
  const nameVectors = new Map(batch.knownNames);
  if (texts.length) {
    const { vectors: embedded } = await deps.embedder.embed(model, texts, {
      signal: ctx.signal,
      batchSize: deps.config.embedBatch,
      onProgress: (n) => onEmbedded(Math.min(n, missing.size), texts.length),
    });
    [...missing.keys()].forEach((h, i) => vectors.set(h, embedded[i]!));
    [...missingNames.keys()].forEach((h, i) => nameVectors.set(h, embedded[missing.size + i]!));
  }
  const rows: VectorRow[] = [];
  for (const [i, e] of batch.extracted.entries()) {
    const file = batch.files[i]!;
    const seen = new Map<string, number>();
    for (const c of e.chunks) {
      const occurrence = seen.get(c.contentHash) ?? 0;
      seen.set(c.contentHash, occurrence + 1);
      const vector = vectors.get(c.contentHash)!;
      const nh = c.nameText ? nameHash(c.nameText) : null;
      rows.push({
        id: rowId(repositoryId, e.path, c.contentHash, occurrence),
        scope: repositoryId,
        text: c.code,
        // The full-text column reads the header too: what the chunk is called, where it lives.
        searchText: analyzeText(`${c.header}\n${c.code}`),
        contentHash: c.contentHash,
        vector,
        // Module code has no name: its chunk vector stands in, so every row is in both rankings.
        vectors: { name_vector: nh ? nameVectors.get(nh)! : vector },
        texts: { name_text: c.nameText ?? '' },
        fields: {
          path: e.path,
          language: e.language ?? file.language,
          kind: c.kind,
          symbol: c.symbol,
          start_line: c.startLine,
          end_line: c.endLine,
          file_hash: file.hash,
          part: c.part,
          name_hash: nh,
        },
      });
    }
  }
  await table.upsert(rows, { replace: { scope: repositoryId, field: 'path', values: batch.files.map((f) => f.path) } });
  if (ctx.signal.aborted) throw ctx.signal.reason;
  return { embedded: missing.size, reused, names: missingNames.size };
}

/**
 * Switches a building generation in once every repository the serving one
 * holds is fully indexed in it too. Conditional on the generation still
 * building, so two jobs finishing together promote once.
 */
export async function promoteIfComplete(deps: Pick<CodeIndexDeps, 'catalog' | 'store'>, gen: Generation): Promise<boolean> {
  const serving = await deps.catalog.serving(codeCollection);
  if (serving) {
    const needed = await deps.store.indexedIn(serving.id);
    const have = new Set(await deps.store.indexedIn(gen.id));
    if (needed.some((id) => !have.has(id))) return false;
  }
  return (await deps.catalog.promote(gen.id)) !== undefined;
}
