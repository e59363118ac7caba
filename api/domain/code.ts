/**
 * Code intelligence use cases: repositories, archive uploads, indexing,
 * symbol lookups and search. Plain functions over plain arguments; the
 * routes in api/routes/code.ts call them.
 *
 * Who may do what:
 * - read (get, symbols, search): the owner, users it is shared with, anyone
 *   when public, and `code:any`; everyone else gets NOT_FOUND, so existence
 *   does not leak;
 * - write (upload, index, delete): the owner and `code:any`;
 * - `path` sources: `code:paths` (operators), and only under PARLEY_CODE_ROOTS.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../../platform/config.ts';
import {
  ArchiveError,
  SourcePathError,
  archiveStaging,
  archiveTree,
  codeCollection,
  identityView,
  moveAside,
  resolveSourcePath,
  stageArchive,
  submitJob,
  type CodeSearch,
  type CodeStore,
  type IndexStateRow,
  type RepositoryRow,
  type SubmitDeps,
} from '../../platform/code/index.ts';
import type { JobLifecycle, JobRow } from '../../platform/jobs/index.ts';
import type { Generation, IndexCatalog, VectorStore } from '../../platform/vectors/index.ts';
import {
  codeIndex,
  isTerminal,
  type ArchiveReceipt,
  type RepositoryIndexView,
  type CodeSearchQuery,
  type CodeSearchResults,
  type CodeSymbol,
  type CreateRepository,
  type Repository,
  type SubmittedJob,
  type SymbolQuery,
} from '../../shared/index.ts';
import { can, type Actor } from '../auth/permissions.ts';
import { AppError } from './errors.ts';
import { links, refusal } from './jobs.ts';
import type { z } from 'zod';

export interface CodeDeps {
  config: Config;
  store: CodeStore;
  catalog: IndexCatalog;
  vectors: VectorStore;
  search: CodeSearch;
  jobs: Pick<JobLifecycle, 'get'>;
  submit: SubmitDeps;
}

function canRead(actor: Actor, row: RepositoryRow): boolean {
  return (
    row.owner_id === actor.userId ||
    can(actor, 'code:any') ||
    row.visibility === 'public' ||
    (row.visibility === 'shared' && row.shared_with.includes(actor.userId))
  );
}

/**
 * Whether the actor may read this job as a reader of its repository: a
 * `code.index` job belongs to the repository it indexes, whose view links
 * it (`job.links`) to everyone who may read the repository. Reading only:
 * cancel and retry stay with the job's owner (api/domain/jobs.ts JobReaders).
 */
export async function mayReadIndexJob(deps: Pick<CodeDeps, 'store'>, actor: Actor, job: Pick<JobRow, 'kind' | 'input'>): Promise<boolean> {
  if (job.kind !== codeIndex.kind) return false;
  const id = (job.input as { repositoryId?: unknown } | null)?.repositoryId;
  if (typeof id !== 'string') return false;
  const row = await deps.store.getRepository(id);
  return row !== undefined && canRead(actor, row);
}

/** The repository if the actor may read it; otherwise NOT_FOUND. */
async function readable(deps: CodeDeps, actor: Actor, id: string): Promise<RepositoryRow> {
  const row = await deps.store.getRepository(id);
  if (!row || !canRead(actor, row)) throw new AppError('NOT_FOUND', { detail: 'No such repository' });
  return row;
}

/** The repository if the actor may change it: FORBIDDEN when they may only read it. */
async function writable(deps: CodeDeps, actor: Actor, id: string): Promise<RepositoryRow> {
  const row = await readable(deps, actor, id);
  if (row.owner_id !== actor.userId && !can(actor, 'code:any'))
    throw new AppError('FORBIDDEN', { detail: 'Only the owner (or an operator) may change this repository' });
  return row;
}

function indexView(state: IndexStateRow, gen: Generation): z.infer<typeof RepositoryIndexView> {
  return {
    generation: gen.id,
    state: gen.state,
    identity: identityView(gen.identity),
    files: state.files,
    chunks: state.chunks,
    languages: state.languages,
    skipped: state.skipped,
    indexedAt: state.indexed_at?.toISOString() ?? null,
  };
}

async function toViews(deps: CodeDeps, rows: RepositoryRow[]): Promise<Repository[]> {
  const [states, gens] = await Promise.all([deps.store.indexStates(rows.map((r) => r.id)), deps.catalog.list(codeCollection)]);
  const genById = new Map(gens.map((g) => [g.id, g]));
  const jobs = new Map<string, Awaited<ReturnType<JobLifecycle['get']>>>();
  await Promise.all(rows.filter((r) => r.index_job_id).map(async (r) => jobs.set(r.id, await deps.jobs.get(r.index_job_id!))));
  return rows.map((row) => {
    const mine = states.filter((s) => s.repository_id === row.id);
    const serving = mine.find((s) => genById.get(s.index_id)?.state === 'serving');
    const building = mine.find((s) => genById.get(s.index_id)?.state === 'building');
    const job = jobs.get(row.id);
    return {
      id: row.id,
      owner: row.owner_id,
      name: row.name,
      visibility: row.visibility,
      sharedWith: row.shared_with,
      source: row.source,
      snapshot: row.snapshot,
      index: serving ? indexView(serving, genById.get(serving.index_id)!) : null,
      building: building ? indexView(building, genById.get(building.index_id)!) : null,
      job: job ? { id: job.id, state: job.state, progress: job.progress ?? null, links: { self: links(job.id).self, events: links(job.id).events } } : null,
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
    };
  });
}

export async function createRepository(deps: CodeDeps, actor: Actor, body: CreateRepository): Promise<Repository> {
  if (body.source.type === 'path') {
    if (!can(actor, 'code:paths'))
      throw new AppError('FORBIDDEN', {
        detail: 'Repositories from a folder on the workers are for operators; upload an archive instead ({ "type": "archive" })',
      });
    try {
      await resolveSourcePath(body.source.path, deps.config.code.roots);
    } catch (err) {
      if (err instanceof SourcePathError)
        throw new AppError('VALIDATION_FAILED', { detail: err.message, errors: [{ path: 'source.path', message: err.message }] });
      throw err;
    }
  }
  if (body.sharedWith.length && body.visibility !== 'shared') {
    throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'sharedWith', message: 'applies only when visibility is "shared"' }] });
  }
  const row = await deps.store.insertRepository({
    id: randomUUID(),
    owner_id: actor.userId,
    name: body.name,
    visibility: body.visibility,
    shared_with: body.sharedWith,
    source: body.source,
  });
  if (!row) throw new AppError('INVALID_STATE', { detail: `You already have a repository named "${body.name}"` });
  return (await toViews(deps, [row]))[0]!;
}

export async function listRepositories(deps: CodeDeps, actor: Actor): Promise<{ items: Repository[] }> {
  return { items: await toViews(deps, await deps.store.visibleRepositories(actor.userId, can(actor, 'code:any'))) };
}

export async function getRepository(deps: CodeDeps, actor: Actor, id: string): Promise<Repository> {
  return (await toViews(deps, [await readable(deps, actor, id)]))[0]!;
}

/** Removes the repository, its rows in every generation of the code index, its record and its uploaded tree. */
export async function deleteRepository(deps: CodeDeps, actor: Actor, id: string): Promise<void> {
  const row = await writable(deps, actor, id);
  // The record goes first: from then on no index batch can record files for it, and a batch that commits
  // rows after the sweep below removes them itself (workers/code/index-job.ts). Under the tree lock, so no
  // upload is swapping a tree into the folder being removed; the folder moves aside there and is removed after.
  const gone = join(archiveStaging(deps.config.code.dir), `gone-${randomUUID()}`);
  const moved = await deps.store.withTreeLock(row.id, async (trx) => {
    if (!(await deps.store.deleteRepository(row.id, trx))) throw new AppError('NOT_FOUND', { detail: 'No such repository' });
    if (row.source.type !== 'archive') return false;
    await mkdir(dirname(gone), { recursive: true });
    return moveAside(dirname(archiveTree(deps.config.code.dir, row.id)), gone);
  });
  if (moved) await rm(gone, { recursive: true, force: true });
  // Its rows in every generation. What a failure here leaves, vectors.maintain sweeps (rows of repositories
  // that no longer exist).
  for (const gen of await deps.catalog.list(codeCollection)) {
    const table = await deps.vectors.existing(gen.tableName);
    if (table) await table.delete([row.id]);
  }
}

export async function uploadArchive(deps: CodeDeps, actor: Actor, id: string, body: Readable | undefined): Promise<z.infer<typeof ArchiveReceipt>> {
  const row = await writable(deps, actor, id);
  if (row.source.type !== 'archive')
    throw new AppError('INVALID_STATE', {
      detail: 'This repository reads a folder on the workers; archives are for repositories created with { "type": "archive" }',
    });
  if (!body) throw new AppError('MALFORMED_BODY', { detail: 'Send the .tar.gz as the request body' });
  let staged;
  try {
    staged = await stageArchive(body, archiveStaging(deps.config.code.dir), deps.config.code.archive);
  } catch (err) {
    if (!(err instanceof ArchiveError)) throw err;
    // Stop reading what is left of a refused body.
    body.resume();
    const errors = err.entry ? [{ path: `archive:${err.entry}`, message: err.message }] : undefined;
    if (err.code === 'too_large' || err.code === 'too_many_files') throw new AppError('PAYLOAD_TOO_LARGE', { detail: err.message, errors, cause: err });
    throw new AppError('ARCHIVE_REJECTED', { detail: err.message, errors, cause: err, extra: { reason: err.code } });
  }
  const { result } = staged;
  const snapshot = { bytes: result.bytes, files: result.files, sha256: result.sha256, uploadedAt: new Date().toISOString() };
  try {
    // Uploads of one repository at once each unpack on their own; the swaps and the snapshots they record
    // take turns, so the last to swap is the tree and the snapshot, and a delete in between wins.
    await deps.store.withTreeLock(row.id, async (trx) => {
      if (!(await deps.store.setSnapshot(row.id, snapshot, trx))) throw new AppError('NOT_FOUND', { detail: 'The repository was deleted during the upload' });
      await staged.swapInto(archiveTree(deps.config.code.dir, row.id));
    });
  } finally {
    await staged.discard();
  }
  return { repository: row.id, bytes: result.bytes, files: result.files, sha256: result.sha256, skipped: result.skipped };
}

/**
 * Submits a `code.index` job for the repository, or answers with the one
 * already queued or running (indexing the same tree twice at once would only
 * do the work twice).
 */
export async function indexRepository(deps: CodeDeps, actor: Actor, id: string): Promise<{ job: SubmittedJob; existing: boolean }> {
  const row = await writable(deps, actor, id);
  if (row.source.type === 'archive' && !row.snapshot)
    throw new AppError('INVALID_STATE', { detail: 'Upload the repository first: PUT /v1/code/repositories/:id/archive with a .tar.gz' });
  if (row.index_job_id) {
    const current = await deps.jobs.get(row.index_job_id);
    if (current && !isTerminal(current.state))
      return { job: { id: current.id, kind: current.kind, state: current.state, links: links(current.id) }, existing: true };
  }
  // Requests that read the same record race to the same key: the run after the job they saw (or the first
  // ever), so one caller's requests at once submit one job, and the next run after it ends gets a new key.
  // (Keys are per owner: the owner and an operator at the same instant may each start one; runs of one
  // repository converge, since each replaces whole files' rows.)
  const key = `code.index:${row.id}:after:${row.index_job_id ?? 'none'}:by:${actor.userId}`;
  let submitted;
  try {
    submitted = await submitJob(deps.submit, codeIndex, { repositoryId: row.id }, { ownerId: actor.userId, key });
  } catch (err) {
    // The lifecycle's refusals as the API answers them everywhere (NOT_ACCEPTED: 503); anything else is a fault.
    throw refusal(err, 'The queue could not take the job; nothing was accepted. Retry later.');
  }
  if (!submitted.created) {
    const current = await deps.jobs.get(submitted.id);
    const state = current?.state ?? 'queued';
    return { job: { id: submitted.id, kind: submitted.kind, state, links: links(submitted.id) }, existing: true };
  }
  await deps.store.setIndexJob(row.id, submitted.id);
  return { job: { id: submitted.id, kind: submitted.kind, state: 'queued', links: links(submitted.id) }, existing: false };
}

export async function findSymbols(deps: CodeDeps, actor: Actor, id: string, q: SymbolQuery): Promise<{ items: CodeSymbol[] }> {
  const row = await readable(deps, actor, id);
  const rows = await deps.store.findSymbols([row.id], q);
  return {
    items: rows.map((s) => ({
      repository: s.repository_id,
      path: s.path,
      language: s.language as CodeSymbol['language'],
      name: s.name,
      qualifiedName: s.qualified_name,
      kind: s.kind,
      signature: s.signature,
      span: { startLine: s.start_line, startColumn: s.start_column, endLine: s.end_line, endColumn: s.end_column },
      parent: s.parent,
      docstring: s.docstring,
      imports: s.imports ?? [],
    })),
  };
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Search across the repositories named (all readable ones by default); naming one the caller may not read is NOT_FOUND. */
export async function searchCode(deps: CodeDeps, actor: Actor, q: CodeSearchQuery): Promise<CodeSearchResults> {
  let ids: string[] | undefined;
  if (q.repository) {
    ids = [
      ...new Set(
        q.repository
          .split(',')
          // Ids in any letter case are one id (as everywhere ids enter), so a list naming one twice names it once.
          .map((s) => s.trim().toLowerCase())
          .filter(Boolean),
      ),
    ];
    const bad = ids.find((i) => !uuid.test(i));
    if (bad !== undefined || ids.length > 100 || ids.length === 0)
      throw new AppError('VALIDATION_FAILED', {
        errors: [
          {
            path: 'query.repository',
            message:
              bad !== undefined
                ? `"${bad}" is not a repository id`
                : ids.length
                  ? 'at most 100 repositories'
                  : 'names no repository id (leave it out to search all you may read)',
          },
        ],
      });
  }
  const visible = await deps.store.visibleRepositories(actor.userId, can(actor, 'code:any'), ids);
  if (ids && visible.length !== ids.length) throw new AppError('NOT_FOUND', { detail: 'No such repository (or not visible to you)' });
  const { repository: _r, ...rest } = q;
  return deps.search({ ...rest, repositoryIds: visible.map((r) => r.id) });
}
