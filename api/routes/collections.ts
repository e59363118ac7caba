import {
  Collection,
  CollectionList,
  CollectionQuery,
  CollectionResults,
  CreateCollection,
  SubmittedJob,
  UpsertDocuments,
  IdParams,
} from '../../shared/index.ts';
import {
  createCollection,
  deleteCollection,
  getCollection,
  listCollections,
  maintainVectorsNow,
  queryCollection,
  upsertDocuments,
  type CollectionDeps,
} from '../domain/collections.ts';
import { problem, route, type Route } from '../http/route.ts';

const notFound = problem('No such collection, or not yours');

export function collectionRoutes(deps: CollectionDeps): Route[] {
  return [
    route({
      method: 'post',
      path: '/v1/admin/vectors/maintain',
      tags: ['collections'],
      access: 'models:manage',
      operationId: 'maintainVectorsNow',
      summary:
        'Run vector maintenance now as a vectors.maintain job (indexes, compaction, old versions; rebuilds after an embedding model change, and their switch). Operators. Requests within a minute answer with the same job.',
      responses: { 202: { description: 'Accepted', schema: SubmittedJob }, 403: problem('Not an operator') },
      async handle({ actor }) {
        const { job, existing } = await maintainVectorsNow(deps, actor);
        return { status: 202, body: job, headers: { Location: job.links.self, ...(existing ? { 'Idempotent-Replayed': 'true' } : {}) } };
      },
    }),
    route({
      method: 'post',
      path: '/v1/collections',
      tags: ['collections'],
      access: 'collections:write',
      operationId: 'createCollection',
      summary: 'Create a vector collection: a name, declared metadata fields, an embedding model.',
      body: CreateCollection,
      responses: {
        201: { description: 'Created', schema: Collection },
        400: problem('Invalid body or model'),
        409: problem('Name already used'),
        422: problem('Model not allowed for your role'),
      },
      async handle({ body, actor }) {
        const c = await createCollection(deps, actor, body);
        return { status: 201, body: c, headers: { Location: `/v1/collections/${c.id}` } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/collections',
      tags: ['collections'],
      access: 'collections:read',
      operationId: 'listCollections',
      summary: 'Your collections.',
      responses: { 200: { description: 'Collections', schema: CollectionList } },
      async handle({ actor }) {
        return { status: 200, body: await listCollections(deps, actor) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/collections/:id',
      tags: ['collections'],
      access: 'collections:read',
      operationId: 'getCollection',
      summary: 'One collection, with its passage count and index identity.',
      params: IdParams,
      responses: { 200: { description: 'The collection', schema: Collection }, 404: notFound },
      async handle({ params, actor }) {
        return { status: 200, body: await getCollection(deps, actor, params.id) };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/collections/:id',
      tags: ['collections'],
      access: 'collections:write',
      operationId: 'deleteCollection',
      summary: 'Delete a collection and its vectors.',
      params: IdParams,
      responses: { 204: { description: 'Deleted' }, 404: notFound },
      async handle({ params, actor }) {
        await deleteCollection(deps, actor, params.id);
        return { status: 204 };
      },
    }),
    route({
      method: 'post',
      path: '/v1/collections/:id/documents',
      operationId: 'upsertDocuments',
      tags: ['collections'],
      access: 'collections:write',
      summary: 'Upsert documents (by id) as a collection.upsert job: split into passages that fit the model, embedded, written in one commit.',
      params: IdParams,
      body: UpsertDocuments,
      responses: { 202: { description: 'Accepted', schema: SubmittedJob }, 400: problem('Invalid documents or metadata'), 404: notFound },
      async handle({ params, body, actor }) {
        const job = await upsertDocuments(deps, actor, params.id, body.documents);
        return { status: 202, body: job, headers: { Location: job.links.self } };
      },
    }),
    route({
      method: 'post',
      path: '/v1/collections/:id/query',
      operationId: 'queryCollection',
      tags: ['collections'],
      access: 'collections:read',
      summary: 'Query a collection by vector, full text or both (RRF); `where` conditions on declared fields are prefilters.',
      params: IdParams,
      body: CollectionQuery,
      responses: { 200: { description: 'Hits', schema: CollectionResults }, 400: problem('Invalid query'), 404: notFound },
      async handle({ params, body, actor }) {
        return { status: 200, body: await queryCollection(deps, actor, params.id, body) };
      },
    }),
  ];
}
