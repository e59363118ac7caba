import {
  CreateKnowledgeSource,
  IdParams,
  KnowledgeItemParams,
  KnowledgeLinks,
  KnowledgeSearchQuery,
  KnowledgeSearchResults,
  KnowledgeSourceAccepted,
  KnowledgeSourceList,
  KnowledgeSourceView,
  KnowledgeItem,
  PutRetention,
  RetentionList,
  RetentionView,
} from '../../shared/index.ts';
import {
  addSource,
  forgetSource,
  getSource,
  itemLinks,
  listRetention,
  listSources,
  pinItem,
  putRetention,
  searchKnowledge,
  type KnowledgeDeps,
} from '../domain/knowledge.ts';
import { problem, route, type Route } from '../http/route.ts';

const noSource = problem('No such source, or not yours');

export function knowledgeRoutes(deps: KnowledgeDeps): Route[] {
  return [
    route({
      method: 'post',
      path: '/v1/knowledge/sources',
      tags: ['knowledge'],
      access: 'knowledge:write',
      operationId: 'addKnowledgeSource',
      summary: 'Add a source (a document or a conversation) to your knowledge; its knowledge.extract job extracts, dedups, embeds and stores its items.',
      body: CreateKnowledgeSource,
      responses: {
        202: { description: 'Accepted: the source and its extraction job', schema: KnowledgeSourceAccepted },
        400: problem('Invalid source or scope'),
        503: problem('The queue could not take the job'),
      },
      async handle({ body, actor }) {
        const r = await addSource(deps, actor, body);
        return { status: 202, body: r, headers: { Location: `/v1/knowledge/sources/${r.source.id}` } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/knowledge/sources',
      tags: ['knowledge'],
      access: 'knowledge:read',
      operationId: 'listKnowledgeSources',
      summary: 'Your sources, newest first.',
      responses: { 200: { description: 'Sources', schema: KnowledgeSourceList } },
      async handle({ actor }) {
        return { status: 200, body: await listSources(deps, actor) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/knowledge/sources/:id',
      tags: ['knowledge'],
      access: 'knowledge:read',
      operationId: 'getKnowledgeSource',
      summary: 'One source: its status, items written, and one extraction outcome per message.',
      params: IdParams,
      responses: { 200: { description: 'The source', schema: KnowledgeSourceView }, 404: noSource },
      async handle({ params, actor }) {
        return { status: 200, body: await getSource(deps, actor, params.id) };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/knowledge/sources/:id',
      tags: ['knowledge'],
      access: 'knowledge:write',
      operationId: 'forgetKnowledgeSource',
      summary: 'Forget a source and everything derived only from it (items other sources also stand on stay).',
      params: IdParams,
      responses: { 204: { description: 'Forgotten' }, 404: noSource },
      async handle({ params, actor }) {
        await forgetSource(deps, actor, params.id);
        return { status: 204 };
      },
    }),
    route({
      method: 'get',
      path: '/v1/knowledge/items/:id/links',
      tags: ['knowledge'],
      access: 'knowledge:read',
      operationId: 'getKnowledgeItemLinks',
      summary: 'An item and its typed links (supports, rebuts, supersedes, mentions, derived_from), both directions.',
      params: KnowledgeItemParams,
      responses: { 200: { description: 'The item and its links', schema: KnowledgeLinks }, 404: problem('No such item, or not yours') },
      async handle({ params, actor }) {
        return { status: 200, body: await itemLinks(deps, actor, params.id) };
      },
    }),
    ...(['put', 'delete'] as const).map((method) =>
      route({
        method,
        path: '/v1/knowledge/items/:id/pin',
        tags: ['knowledge'],
        access: 'knowledge:write',
        operationId: method === 'put' ? 'pinKnowledgeItem' : 'unpinKnowledgeItem',
        summary:
          method === 'put'
            ? 'Pin an item: it never expires and does not decay (a soft-expired item not yet purged comes back).'
            : "Unpin an item: its scope's TTL and decay apply to it again.",
        params: KnowledgeItemParams,
        responses: { 200: { description: 'The item as stored now', schema: KnowledgeItem }, 404: problem('No such item, or not yours') },
        async handle({ params, actor }) {
          return { status: 200, body: await pinItem(deps, actor, params.id, method === 'put') };
        },
      }),
    ),
    route({
      method: 'get',
      path: '/v1/knowledge/retention',
      tags: ['knowledge'],
      access: 'knowledge:read',
      operationId: 'listKnowledgeRetention',
      summary: 'Your scopes’ retention settings (scopes without one keep their items).',
      responses: { 200: { description: 'Settings per scope', schema: RetentionList } },
      async handle({ actor }) {
        return { status: 200, body: await listRetention(deps, actor) };
      },
    }),
    route({
      method: 'put',
      path: '/v1/knowledge/retention',
      tags: ['knowledge'],
      access: 'knowledge:write',
      operationId: 'putKnowledgeRetention',
      summary: "Set a scope's TTL and decay half-life; the expiry of the items it holds is recomputed at once.",
      body: PutRetention,
      responses: { 200: { description: 'The settings, and how many stored items changed', schema: RetentionView }, 400: problem('Invalid settings') },
      async handle({ body, actor }) {
        return { status: 200, body: await putRetention(deps, actor, body) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/knowledge/search',
      tags: ['knowledge'],
      access: 'knowledge:read',
      operationId: 'searchKnowledge',
      summary: 'Search your knowledge: vector, full-text, entity and recency signals fused, as of a time; each hit with its provenance down to message ids.',
      query: KnowledgeSearchQuery,
      responses: { 200: { description: 'Hits', schema: KnowledgeSearchResults }, 400: problem('Invalid query') },
      async handle({ query, actor }) {
        return { status: 200, body: await searchKnowledge(deps, actor, query) };
      },
    }),
  ];
}
