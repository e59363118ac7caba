/**
 * `client.code`: repositories (register, upload a .tar.gz, index as a `code.index` job, read, delete),
 * search by meaning and by name, and symbol lookups. The routes: docs/code-search.md.
 */
import type { z } from 'zod';
import type {
  ArchiveReceipt as ArchiveReceiptSchema,
  CodeSearchQuery,
  CodeSearchResults,
  CodeSymbol,
  CreateRepository,
  Repository,
  RepositoryList,
  SubmittedJob,
  SymbolList,
  SymbolQuery,
} from '../../shared/index.ts';
import type { ResourceContext } from '../internal/context.ts';
import type { CallOptions, JobProgress, JobResult } from '../types.ts';
import { followJob, type FollowOptions, type Submitted } from './jobs.ts';

/** What you send to register a repository (defaults optional). */
export type NewRepository = z.input<typeof CreateRepository>;
/** What an upload answers: bytes, files written, the archive's sha256, entries skipped by reason. */
export type ArchiveReceipt = z.output<typeof ArchiveReceiptSchema>;
/** Search filters: every field of `GET /v1/code/search` but `q`; `repository` may be one id or several. */
export type CodeSearchOptions = Partial<Omit<CodeSearchQuery, 'q' | 'repository'>> & { repository?: string | readonly string[] };
/** Symbol filters: every field of `GET …/symbols` but `name`. */
export type SymbolSearchOptions = Partial<Omit<SymbolQuery, 'name'>>;
/** A `.tar.gz` of the tree. A Node Buffer is a Uint8Array. */
export type ArchiveBody = Blob | ArrayBuffer | Uint8Array;
/** `indexAndWait`: follow the job to its end, with its progress (files and chunks done, an ETA). */
export interface IndexWaitOptions extends Omit<FollowOptions, 'onToken' | 'onReset' | 'onProgress'> {
  onProgress?: (progress: JobProgress<'code.index'>) => void;
  /** Called once the index job is accepted (or the one already running is returned). */
  onSubmitted?: (job: Submitted) => void;
}

/** Bytes as a Blob fetch can send (and send again on a retry). */
export function toBlob(data: ArchiveBody): Blob {
  if (data instanceof Blob) return data;
  // A copy typed over an ArrayBuffer: a view over a SharedArrayBuffer cannot be a Blob part.
  return new Blob([data instanceof ArrayBuffer ? data : new Uint8Array(data)]);
}

export function codeResource(ctx: ResourceContext) {
  const { http } = ctx;
  const at = (id: string, rest = '') => `/v1/code/repositories/${encodeURIComponent(id)}${rest}`;

  /** Indexes (or re-indexes; only changed content is embedded again). The job already queued or running is returned instead of a second one: `replayed` is then true. */
  async function index(id: string, opts: CallOptions = {}): Promise<Submitted> {
    const { data, response } = await http.request<SubmittedJob>({ method: 'POST', path: at(id, '/index'), signal: opts.signal, idempotent: true });
    return { ...data, replayed: response.headers.get('idempotent-replayed') === 'true' };
  }

  const repositories = {
    /** Registers a repository: `source: { type: 'archive' }` (then `upload`), or (operators) `{ type: 'path', path }` under PARLEY_CODE_ROOTS. */
    async create(body: NewRepository, opts: CallOptions = {}): Promise<Repository> {
      return (await http.request<Repository>({ method: 'POST', path: '/v1/code/repositories', body, signal: opts.signal })).data;
    },
    /** Repositories you may read, with their index state and latest index job (the API does not page them). */
    async list(opts: CallOptions = {}): Promise<Repository[]> {
      return (await http.request<z.output<typeof RepositoryList>>({ method: 'GET', path: '/v1/code/repositories', signal: opts.signal })).data.items;
    },
    /** Files, chunks, languages, skipped files, the index identity, when last indexed, and the latest job with its progress. */
    async get(id: string, opts: CallOptions = {}): Promise<Repository> {
      return (await http.request<Repository>({ method: 'GET', path: at(id), signal: opts.signal })).data;
    },
    /** Deletes the repository, its index rows and its uploaded tree. */
    async delete(id: string, opts: CallOptions = {}): Promise<void> {
      await http.request<void>({ method: 'DELETE', path: at(id), signal: opts.signal });
    },
    /** Uploads the tree as a `.tar.gz`; it replaces the previous upload once it passes every check (else `ARCHIVE_REJECTED` or `PAYLOAD_TOO_LARGE`). */
    async upload(id: string, archive: ArchiveBody, opts: CallOptions = {}): Promise<ArchiveReceipt> {
      return (
        await http.request<ArchiveReceipt>({
          method: 'PUT',
          path: at(id, '/archive'),
          binary: { data: toBlob(archive), contentType: 'application/gzip' },
          signal: opts.signal,
        })
      ).data;
    },
    index,
    /** `index`, then follows the job to its end: resolves with its result (files, chunks embedded and reused, skipped); rejects with a ParleyError if it fails or is cancelled. */
    async indexAndWait(id: string, opts: IndexWaitOptions = {}): Promise<JobResult<'code.index'>> {
      const job = await index(id, opts);
      opts.onSubmitted?.(job);
      const { onProgress, onSubmitted: _, ...follow } = opts;
      return (await followJob(ctx, job.id, {
        ...follow,
        ...(onProgress ? { onProgress: (p: unknown) => onProgress(p as JobProgress<'code.index'>) } : {}),
      })) as JobResult<'code.index'>;
    },
    /** Definitions by name or qualified name (`Session.send`), case-insensitive; a trailing `*` matches a prefix. */
    async symbols(id: string, name: string, query: SymbolSearchOptions = {}, opts: CallOptions = {}): Promise<CodeSymbol[]> {
      return (await http.request<z.output<typeof SymbolList>>({ method: 'GET', path: at(id, '/symbols'), query: { ...query, name }, signal: opts.signal })).data
        .items;
    },
  };

  return {
    repositories,
    /**
     * Searches code by meaning and by name (hybrid by default), in every repository you may read or in
     * `repository`. `mode` in the answer is what ran; `degraded` says why a mode could not run in full.
     */
    async search(q: string, query: CodeSearchOptions = {}, opts: CallOptions = {}): Promise<CodeSearchResults> {
      const { repository, ...rest } = query;
      const repo = typeof repository === 'string' ? repository : repository?.join(',');
      return (await http.request<CodeSearchResults>({ method: 'GET', path: '/v1/code/search', query: { ...rest, q, repository: repo }, signal: opts.signal }))
        .data;
    },
  };
}

export type CodeResource = ReturnType<typeof codeResource>;
