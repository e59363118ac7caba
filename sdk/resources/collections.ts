/**
 * `client.collections`: vector collections of documents that are not code: create one, upsert
 * documents (a `collection.upsert` job), query by meaning, full text or both. The routes: docs/vectors.md.
 */
import type { z } from 'zod';
import type {
  Collection,
  CollectionHit as CollectionHitSchema,
  CollectionList,
  CollectionQuery,
  CollectionResults,
  CreateCollection,
  DocumentInput,
  SubmittedJob,
} from '../../shared/index.ts';
import type { ResourceContext } from '../internal/context.ts';
import type { CallOptions, JobResult } from '../types.ts';
import { followJob, type FollowOptions, type Submitted } from './jobs.ts';

/** What you send to create a collection (defaults optional). */
export type NewCollection = z.input<typeof CreateCollection>;
/** A document to upsert: `{ id, text, metadata? }`; an existing id is replaced. */
export type NewDocument = z.input<typeof DocumentInput>;
/** Query options: every field of the query body but `text` (`mode`, `where` prefilters on declared fields, `limit`). */
export type CollectionQueryOptions = Partial<Omit<z.input<typeof CollectionQuery>, 'text'>>;
export type CollectionHit = z.output<typeof CollectionHitSchema>;
export interface UpsertWaitOptions extends Omit<FollowOptions, 'onToken' | 'onReset'> {
  onSubmitted?: (job: Submitted) => void;
}

export function collectionsResource(ctx: ResourceContext) {
  const { http } = ctx;
  const at = (id: string, rest = '') => `/v1/collections/${encodeURIComponent(id)}${rest}`;

  /** Upserts documents (by id) as a `collection.upsert` job: split into passages that fit the model, embedded, written in one commit. */
  async function upsert(id: string, documents: NewDocument[], opts: CallOptions = {}): Promise<Submitted> {
    const { data } = await http.request<SubmittedJob>({ method: 'POST', path: at(id, '/documents'), body: { documents }, signal: opts.signal });
    return { ...data, replayed: false };
  }

  return {
    /** A name, declared metadata `fields` (`string`, `int`, `float`, `bool`, `string[]`), an embedding model (default: the configured one). */
    async create(body: NewCollection, opts: CallOptions = {}): Promise<Collection> {
      return (await http.request<Collection>({ method: 'POST', path: '/v1/collections', body, signal: opts.signal })).data;
    },
    /** Your collections (the API does not page them). */
    async list(opts: CallOptions = {}): Promise<Collection[]> {
      return (await http.request<z.output<typeof CollectionList>>({ method: 'GET', path: '/v1/collections', signal: opts.signal })).data.items;
    },
    /** One collection, with its passage count and index identity. */
    async get(id: string, opts: CallOptions = {}): Promise<Collection> {
      return (await http.request<Collection>({ method: 'GET', path: at(id), signal: opts.signal })).data;
    },
    /** Deletes the collection and its vectors. */
    async delete(id: string, opts: CallOptions = {}): Promise<void> {
      await http.request<void>({ method: 'DELETE', path: at(id), signal: opts.signal });
    },
    upsert,
    /** `upsert`, then follows the job to its end: resolves with its result (documents, passages, embedded, reused); rejects with a ParleyError if it fails or is cancelled. */
    async upsertAndWait(id: string, documents: NewDocument[], opts: UpsertWaitOptions = {}): Promise<JobResult<'collection.upsert'>> {
      const job = await upsert(id, documents, opts);
      opts.onSubmitted?.(job);
      return (await followJob(ctx, job.id, opts)) as JobResult<'collection.upsert'>;
    },
    /** Hits by vector, full text or both (RRF, the default); `where` conditions on declared fields are prefilters. */
    async query(id: string, text: string, query: CollectionQueryOptions = {}, opts: CallOptions = {}): Promise<CollectionResults> {
      return (await http.request<CollectionResults>({ method: 'POST', path: at(id, '/query'), body: { ...query, text }, signal: opts.signal })).data;
    },
    /**
     * Operators: runs vector maintenance now as a `vectors.maintain` job (indexes, compaction, and the rebuild
     * and switch after an embedding model change) rather than at the next scheduled round. Calls within a
     * minute answer with the same job; follow it with `client.jobs`.
     */
    async maintainNow(opts: CallOptions = {}): Promise<SubmittedJob> {
      return (await http.request<SubmittedJob>({ method: 'POST', path: '/v1/admin/vectors/maintain', signal: opts.signal })).data;
    },
  };
}

export type CollectionsResource = ReturnType<typeof collectionsResource>;
