import {
  ArchiveReceipt,
  CodeSearchQuery,
  CodeSearchResults,
  CreateRepository,
  Repository,
  RepositoryList,
  SubmittedJob,
  SymbolList,
  SymbolQuery,
  IdParams,
} from '../../shared/index.ts';
import {
  createRepository,
  deleteRepository,
  findSymbols,
  getRepository,
  indexRepository,
  listRepositories,
  searchCode,
  uploadArchive,
  type CodeDeps,
} from '../domain/code.ts';
import { problem, route, type Route } from '../http/route.ts';

const notFound = problem('No such repository, or not visible to you');

export function codeRoutes(deps: CodeDeps): Route[] {
  return [
    route({
      method: 'post',
      path: '/v1/code/repositories',
      tags: ['code'],
      access: 'code:write',
      operationId: 'createRepository',
      summary: 'Register a repository: an archive you upload next, or (operators) a folder under PARLEY_CODE_ROOTS.',
      body: CreateRepository,
      responses: {
        201: { description: 'Created', schema: Repository },
        400: problem('Invalid body or path'),
        403: problem('Path sources need code:paths'),
        409: problem('Name already used'),
      },
      async handle({ body, actor }) {
        const repo = await createRepository(deps, actor, body);
        return { status: 201, body: repo, headers: { Location: `/v1/code/repositories/${repo.id}` } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/code/repositories',
      tags: ['code'],
      access: 'code:read',
      operationId: 'listRepositories',
      summary: 'Repositories you may read, with their index state and latest index job.',
      responses: { 200: { description: 'Repositories', schema: RepositoryList } },
      async handle({ actor }) {
        return { status: 200, body: await listRepositories(deps, actor) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/code/repositories/:id',
      tags: ['code'],
      access: 'code:read',
      operationId: 'getRepository',
      summary: 'A repository: files, chunks, languages, skipped files, the index identity, when last indexed, the job in progress.',
      params: IdParams,
      responses: { 200: { description: 'The repository', schema: Repository }, 404: notFound },
      async handle({ params, actor }) {
        return { status: 200, body: await getRepository(deps, actor, params.id) };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/code/repositories/:id',
      tags: ['code'],
      access: 'code:write',
      operationId: 'deleteRepository',
      summary: 'Delete a repository, its index rows and its uploaded tree.',
      params: IdParams,
      responses: { 204: { description: 'Deleted' }, 403: problem('Not the owner'), 404: notFound },
      async handle({ params, actor }) {
        await deleteRepository(deps, actor, params.id);
        return { status: 204 };
      },
    }),
    route({
      method: 'put',
      path: '/v1/code/repositories/:id/archive',
      operationId: 'uploadRepositoryArchive',
      tags: ['code'],
      access: 'code:write',
      summary: 'Upload the repository as a .tar.gz (Content-Type application/gzip); it replaces the previous upload once it passes every check.',
      params: IdParams,
      bodyType: 'binary',
      binaryTypes: ['application/gzip', 'application/x-gzip', 'application/x-tar+gzip', 'application/octet-stream'],
      responses: {
        200: { description: 'Unpacked', schema: ArchiveReceipt },
        403: problem('Not the owner'),
        404: notFound,
        409: problem('Not an archive repository'),
        413: problem('Too large, or too many files'),
        415: problem('Not one of the gzip types above, or a Content-Encoding other than identity (the .tar.gz is sent as it is)'),
        422: problem('Unsafe entries (zip-slip, links out of the tree, names that are not UTF-8) or not a .tar.gz'),
      },
      async handle({ params, actor, stream }) {
        return { status: 200, body: await uploadArchive(deps, actor, params.id, stream) };
      },
    }),
    route({
      method: 'post',
      path: '/v1/code/repositories/:id/index',
      operationId: 'indexRepository',
      tags: ['code'],
      access: 'code:write',
      summary: 'Index (or re-index) the repository as a code.index job; only changed content is embedded again. Answers with the job already running, if any.',
      params: IdParams,
      responses: { 202: { description: 'Accepted', schema: SubmittedJob }, 403: problem('Not the owner'), 404: notFound, 409: problem('Nothing uploaded yet') },
      async handle({ params, actor }) {
        const { job, existing } = await indexRepository(deps, actor, params.id);
        return { status: 202, body: job, headers: { Location: job.links.self, ...(existing ? { 'Idempotent-Replayed': 'true' } : {}) } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/code/repositories/:id/symbols',
      operationId: 'findSymbols',
      tags: ['code'],
      access: 'code:read',
      summary: 'Definitions by name (or qualified name; a trailing * matches a prefix): kind, signature, span, parent, docstring, imports.',
      params: IdParams,
      query: SymbolQuery,
      responses: { 200: { description: 'Symbols', schema: SymbolList }, 404: notFound },
      async handle({ params, query, actor }) {
        return { status: 200, body: await findSymbols(deps, actor, params.id, query) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/code/search',
      operationId: 'searchCode',
      tags: ['code'],
      access: 'code:read',
      summary: 'Search code by meaning and by name: hybrid (vector + full text, fused with RRF) by default; filters are prefilters.',
      query: CodeSearchQuery,
      responses: {
        200: { description: 'Hits', schema: CodeSearchResults },
        400: problem('Invalid query'),
        404: problem('A named repository is not visible to you'),
      },
      async handle({ query, actor }) {
        return { status: 200, body: await searchCode(deps, actor, query) };
      },
    }),
  ];
}
