/**
 * The `code.index` and `code.batch` handlers: one repository into one index
 * generation, as a job tree.
 *
 *   code.index: scan ─▶ diff against the generation's record ─▶ one
 *   code.batch child per batch of changed files ─▶ wait for them ─▶ remove
 *   deleted files ─▶ maintain the table's indexes ─▶ record the repository's
 *   state ─▶ promote a building generation once complete.
 *
 *   code.batch: extract (chunk pool) ─▶ reuse stored vectors by content hash
 *   (from repositories the owner may read) ─▶ embed the rest (Ollama) ─▶ one LanceDB commit replacing those files'
 *   rows ─▶ record the files and their symbols (Postgres).
 *
 * The batches are ordinary jobs in the `code-batch` queue (platform/jobs
 * children.ts): every worker process takes one at a time, so a repository
 * indexes on every machine at once, and the queue dashboard shows the tree.
 *
 * Incremental by content: a file whose hash matches the record is not read
 * again, and a chunk whose text hash a row of the generation already has, in
 * a repository the owner may read (their own, shared with them, public), is
 * not embedded again. Never from others: the counts (and the time saved)
 * would tell the owner whether someone's private code holds a text they
 * uploaded.
 *
 * Crash-safe by construction: a batch is recorded in Postgres only after its
 * LanceDB commit, and the parent plans from the diff. A killed worker's batch
 * runs again (it redoes that batch only); when the kill fell between the
 * commit and the record, its vectors are found by hash and not embedded
 * again. A parent that takes over after a crash first waits for the batches
 * its earlier attempt left running, then plans what is still changed. The
 * result equals a clean build's because both converge on the same rows for
 * the same tree.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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
  type RepositoryRow,
  type TreeFile,
} from '../../platform/code/index.ts';
import { JobFailure, type ChildJobs, type JobRow } from '../../platform/jobs/index.ts';
import type { Embedder, Generation, IndexCatalog, VectorRow, VectorStore, VectorTable } from '../../platform/vectors/index.ts';
import { analyzeText, sameIdentity } from '../../platform/vectors/index.ts';
import { codeBatch, isTerminal } from '../../shared/index.ts';
import type { CodeBatchProgress, CodeBatchResult, CodeIndexProgress, CodeIndexResult, SourceFile, codeIndex } from '../../shared/index.ts';
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
  /** How often a code.index job reads its batches' records (progress, ends). @defaultValue 500 */
  batchPollMs?: number;
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
  /** Submits and reads the code.batch children (platform/jobs children.ts). */
  children: ChildJobs;
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

/** What the parent keeps of each batch it waits for. */
interface BatchState {
  id: string;
  n: number;
  files: number;
  bytes: number;
  row?: JobRow;
}

export function codeIndexHandler(deps: CodeIndexDeps): Handler<typeof codeIndex> {
  return async (input, ctx) => {
    const started = Date.now();
    const repo = await deps.store.getRepository(input.repositoryId);
    if (!repo) throw new JobFailure('HANDLER_FAILED', `repository ${input.repositoryId} does not exist (deleted?)`);
    if (repo.source.type === 'archive' && !repo.snapshot)
      throw new JobFailure('HANDLER_FAILED', 'no archive was uploaded for this repository yet: PUT /v1/code/repositories/:id/archive first');
    const root = await treeOf(deps, repo);
    const { gen } = await targetGeneration(deps, input, ctx.signal);
    const table = await deps.vectors.table(codeTableSpec(gen));
    const parent = await deps.children.parent(ctx.jobId);

    const progress: CodeIndexProgress = { phase: 'scanning', filesDone: 0, filesTotal: 0, chunksEmbedded: 0, chunksReused: 0, etaSeconds: null };
    let bytesTotal = 0;
    let indexingSince = 0;
    // The batches of this run, updated from their records as they run.
    let running: BatchState[] = [];
    const report = () => {
      if (progress.phase === 'indexing') {
        let files = 0;
        let embedded = 0;
        let reused = 0;
        let bytes = 0;
        for (const b of running) {
          const result = b.row?.state === 'completed' ? (b.row.result as CodeBatchResult) : undefined;
          if (result) {
            files += b.files;
            embedded += result.chunksEmbedded;
            reused += result.chunksReused;
            bytes += b.bytes;
          } else if (b.row?.state === 'active' && b.row.progress) {
            // The share of its texts embedded so far moves the ETA within a batch.
            const p = b.row.progress as CodeBatchProgress;
            embedded += p.chunksEmbedded;
            bytes += p.of ? (b.bytes * Math.min(p.embedded, p.of)) / p.of : 0;
          }
        }
        progress.filesDone = files;
        progress.chunksEmbedded = embedded;
        progress.chunksReused = reused;
        if (bytes > 0) progress.etaSeconds = Math.round((bytesTotal - bytes) / (bytes / Math.max(1, Date.now() - indexingSince)) / 1000);
      }
      ctx.progress({ ...progress });
    };
    // Progress at least every second, whatever the batches are doing.
    const ticker = setInterval(report, 1000);
    try {
      report();
      // Batches an earlier attempt of this job submitted and that still run: wait for them, so no file is
      // planned twice. What they committed shows in the diff below; what they failed is planned again. (An
      // attempt that lost its lock stops at its next batch; one it was submitting as it stopped may cover
      // files planned here again: the same rows twice, wasted work that converges.)
      const earlier = await deps.children.earlier(ctx.jobId);
      const unfinished = earlier.filter((r) => !isTerminal(r.state)).map((row) => ({ id: row.id, row }));
      if (unfinished.length) {
        ctx.log.info({ batches: unfinished.length }, 'waiting for the batches an earlier attempt left running');
        await awaitBatches(deps, ctx, unfinished);
      }

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

      // Fan out: one code.batch child per batch, numbered after the earlier attempts' ones. Every worker
      // serving code-batch takes them, one at a time each; this job waits, holding its own lock.
      progress.phase = 'indexing';
      progress.filesTotal = changed.length;
      bytesTotal = changed.reduce((n, f) => n + f.bytes, 0);
      indexingSince = Date.now();
      const plan = batches(changed, deps.config.batchBytes);
      running = [];
      for (const [i, files] of plan.entries()) {
        if (ctx.signal.aborted) break;
        const n = earlier.length + i;
        const id = await deps.children.submit(parent, codeBatch, {
          repositoryId: repo.id,
          generation: gen.id,
          parentId: ctx.jobId,
          parentAttempt: ctx.attempt,
          n,
          files: files.map((f) => ({ path: f.path, language: f.language, bytes: f.bytes, hash: f.hash })),
        });
        running.push({ id, n, files: files.length, bytes: files.reduce((s, f) => s + f.bytes, 0) });
      }
      await awaitBatches(deps, ctx, running);
      const failed = running.filter((b) => b.row!.state !== 'completed');
      if (failed.length) {
        const first = failed[0]!.row!;
        throw new JobFailure(
          'HANDLER_FAILED',
          `${failed.length} of ${plan.length} batches did not complete; batch ${failed[0]!.n} (job ${first.id}) ended ${first.state}: ${first.error_code ?? ''} ${first.error_message ?? ''}`.trim(),
          { details: { batches: failed.map((b) => ({ n: b.n, job: b.id, state: b.row!.state, code: b.row!.error_code })) } },
        );
      }
      report();
      const done = running.map((b) => b.row!.result as CodeBatchResult);

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
        chunksEmbedded: done.reduce((n, r) => n + r.chunksEmbedded, 0),
        chunksReused: done.reduce((n, r) => n + r.chunksReused, 0),
        namesEmbedded: done.reduce((n, r) => n + r.namesEmbedded, 0),
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
 * Waits until every batch's record is terminal, reading them every `pollMs`
 * (the job's progress ticker reports from what it read). Cancelled, it
 * cancels the batches still running and waits for them to end (a batch
 * never stops between its LanceDB commit and its record, so what ends up
 * committed is consistent), then throws. Shut down or superseded, it throws
 * at once: the batches go on, and the attempt that takes over waits for them.
 */
async function awaitBatches(deps: CodeIndexDeps, ctx: HandlerContext, batches: { id: string; row?: JobRow }[]): Promise<void> {
  const pollMs = deps.config.batchPollMs ?? 500;
  const read = async () => {
    const pending = batches.filter((b) => !b.row || !isTerminal(b.row.state));
    const rows = new Map((await deps.children.states(pending.map((b) => b.id))).map((r) => [r.id, r]));
    for (const b of pending) b.row = rows.get(b.id) ?? b.row;
    return batches.every((b) => b.row && isTerminal(b.row.state));
  };
  const since = Date.now();
  let warned = false;
  while (!(await read()) && !ctx.signal.aborted) {
    if (!warned && Date.now() - since > 60_000 && batches.every((b) => b.row?.state === 'queued')) {
      warned = true;
      ctx.log.warn(
        { batches: batches.length },
        'no worker has taken a code.batch job for a minute: is some worker serving the code-batch queue (PARLEY_WORKER_QUEUES)?',
      );
    }
    await sleep(pollMs, undefined, { signal: ctx.signal }).catch(() => {});
  }
  if (!ctx.signal.aborted) return;
  if (ctx.abortReason === 'cancelled') {
    await deps.children.cancel(ctx.jobId);
    const deadline = Date.now() + 60_000;
    while (!(await read()) && Date.now() < deadline) await sleep(100);
  }
  throw ctx.signal.reason;
}

/** The folder a repository's files are read from. */
async function treeOf(deps: CodeIndexDeps, repo: RepositoryRow): Promise<string> {
  try {
    return await repositoryTree(repo.source, repo.id, { codeDir: deps.config.dir, roots: deps.config.roots });
  } catch (err) {
    throw new JobFailure('HANDLER_FAILED', err instanceof Error ? err.message : String(err));
  }
}

/**
 * The `code.batch` handler: one batch of a `code.index` job. Reads and
 * extracts its files, embeds the texts no row of the generation has, commits
 * them in one LanceDB write, then records the files and their symbols. The
 * record follows the commit whatever happens meanwhile (a cancel lands after
 * it): a batch is either wholly recorded or not at all, and when it is not,
 * its rows are found by hash and not embedded again.
 */
export function codeBatchHandler(deps: CodeIndexDeps): Handler<typeof codeBatch> {
  return async (input, ctx) => {
    const repo = await deps.store.getRepository(input.repositoryId);
    if (!repo) throw new JobFailure('HANDLER_FAILED', `repository ${input.repositoryId} does not exist (deleted?)`);
    const root = await treeOf(deps, repo);
    const { gen, model } = await targetGeneration(deps, { generation: input.generation }, ctx.signal);
    const table = await deps.vectors.table(codeTableSpec(gen));
    const extractOptions: ExtractOptions = { maxTokens: Math.min(deps.config.embedWindow, model.contextLength) - 2, tokenizer: model.tokenizer };
    // Reuse only what the repository's owner may read (whoever submitted the job: readers of the repository
    // see its progress), so chunksReused, namesEmbedded and the time taken leak nothing of other owners' code.
    const scopes = await deps.store.readableRepositoryIds(repo.owner_id);
    const batch = await prepare(deps, table, root, input.files, extractOptions, scopes, ctx.signal);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const result = await embedAndWrite(deps, ctx, table, repo.id, batch, model.model, (p) => ctx.progress(p));
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
    await deps.store.recordBatch(repo.id, gen.id, files, metadata).catch(async (err: unknown) => {
      throw (await withdrawIfDeleted(deps, table, repo.id)) ?? err;
    });
    // A delete that ran while this batch embedded removed the rows before this batch wrote its own: take them out.
    const deleted = await withdrawIfDeleted(deps, table, repo.id);
    if (deleted) throw deleted;
    return {
      files: files.length,
      chunks: files.reduce((n, f) => n + f.chunks, 0),
      chunksEmbedded: result.embedded,
      chunksReused: result.reused,
      namesEmbedded: result.names,
    };
  };
}

/**
 * When the repository was deleted while a batch ran, the rows the batch committed outlived the delete's
 * own sweep of them: removes every row of the repository from the batch's table and answers the failure
 * to end the batch with; undefined while the repository still exists.
 */
async function withdrawIfDeleted(deps: CodeIndexDeps, table: VectorTable, repositoryId: string): Promise<JobFailure | undefined> {
  if (await deps.store.getRepository(repositoryId)) return undefined;
  await table.delete([repositoryId]);
  return new JobFailure('HANDLER_FAILED', `repository ${repositoryId} was deleted during the batch; its rows were removed`);
}

/** Reads and extracts a batch's files, and finds the vectors already stored for its texts in the rows of `scopes`. */
async function prepare(
  deps: CodeIndexDeps,
  table: VectorTable,
  root: string,
  files: readonly TreeFile[],
  extractOptions: ExtractOptions,
  scopes: readonly string[],
  signal: AbortSignal,
): Promise<PreparedBatch> {
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
  const extracted = sources.length ? await deps.pool.extract(sources, extractOptions, signal) : [];
  const known = await table.vectorsByHash(
    extracted.flatMap((e) => e.chunks.map((c) => c.contentHash)),
    { scopes },
  );
  const knownNames = await table.vectorsByHash(
    extracted.flatMap((e) => e.chunks.flatMap((c) => (c.nameText ? [nameHash(c.nameText)] : []))),
    { columns: { vector: 'name_vector', hash: 'name_hash' }, scopes },
  );
  return { files: kept, extracted, known, knownNames };
}

/**
 * Embeds the batch's texts that no stored row has (chunk texts by content
 * hash, name texts by name hash), then commits the batch's files in one write.
 */
async function embedAndWrite(
  deps: CodeIndexDeps,
  ctx: HandlerContext<CodeBatchProgress>,
  table: VectorTable,
  repositoryId: string,
  batch: PreparedBatch,
  model: string,
  onEmbedded: (p: CodeBatchProgress) => void,
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
      onProgress: (n) => onEmbedded({ embedded: n, of: texts.length, chunksEmbedded: Math.min(n, missing.size) }),
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
