/** `client.knowledge`: sources in, their extraction as jobs, search with provenance, links, forgetting (docs/knowledge.md). */
import type {
  CreateKnowledgeSource,
  KnowledgeLinks,
  KnowledgeSearchQuery,
  KnowledgeSearchResults,
  KnowledgeSourceAccepted,
  KnowledgeSourceList,
  KnowledgeSourceView,
  Source,
} from '../../shared/index.ts';
import type { ResourceContext } from '../internal/context.ts';
import type { CallOptions } from '../types.ts';

export type KnowledgeSearch = Pick<KnowledgeSearchQuery, 'q'> & Partial<Omit<KnowledgeSearchQuery, 'q'>>;

export function knowledgeResource({ http }: ResourceContext) {
  return {
    /** Adds a source; its `knowledge.extract` job is `job` (follow it with `client.jobs.get(job.id)` or `client.jobs.stream(job.id)`). */
    async addSource(source: Source, opts: CallOptions & { scope?: CreateKnowledgeSource['scope'] } = {}): Promise<KnowledgeSourceAccepted> {
      return (
        await http.request<KnowledgeSourceAccepted>({
          method: 'POST',
          path: '/v1/knowledge/sources',
          body: { source, ...(opts.scope ? { scope: opts.scope } : {}) },
          signal: opts.signal,
        })
      ).data;
    },
    async listSources(opts: CallOptions = {}): Promise<KnowledgeSourceView[]> {
      return (await http.request<KnowledgeSourceList>({ method: 'GET', path: '/v1/knowledge/sources', signal: opts.signal })).data.items;
    },
    /** One source, with one extraction outcome per message. */
    async getSource(id: string, opts: CallOptions = {}): Promise<KnowledgeSourceView> {
      return (await http.request<KnowledgeSourceView>({ method: 'GET', path: `/v1/knowledge/sources/${encodeURIComponent(id)}`, signal: opts.signal })).data;
    },
    /** Forgets a source and what only it said. */
    async forget(id: string, opts: CallOptions = {}): Promise<void> {
      await http.request<void>({ method: 'DELETE', path: `/v1/knowledge/sources/${encodeURIComponent(id)}`, signal: opts.signal });
    },
    async links(itemId: string, opts: CallOptions = {}): Promise<KnowledgeLinks> {
      return (await http.request<KnowledgeLinks>({ method: 'GET', path: `/v1/knowledge/items/${encodeURIComponent(itemId)}/links`, signal: opts.signal })).data;
    },
    async search(query: KnowledgeSearch, opts: CallOptions = {}): Promise<KnowledgeSearchResults> {
      return (await http.request<KnowledgeSearchResults>({ method: 'GET', path: '/v1/knowledge/search', query: { ...query }, signal: opts.signal })).data;
    },
  };
}

export type KnowledgeResource = ReturnType<typeof knowledgeResource>;
