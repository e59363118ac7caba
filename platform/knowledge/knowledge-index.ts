/**
 * The seam to storage. Extraction is pure; where items live (LanceDB, through
 * platform/vectors, once that lands) is behind `KnowledgeIndex`. Whatever
 * implements it must hold one rule: every read and write is confined to the
 * scope keys it is given, ANDed into the store's prefilter (VectorRow.scope),
 * and an empty list of scopes matches nothing.
 */
import type { KnowledgeItem, ScopeRef } from '../../shared/index.ts';

/**
 * The partition key of an item: `private:<owner>` (one user's or one agent's
 * own memory), `room:<room>`, or `shared`. Owner and room ids are
 * URI-encoded so no id can forge another key.
 */
export function scopeKey(ref: Pick<ScopeRef, 'scope' | 'owner' | 'room'>): string {
  switch (ref.scope) {
    case 'private':
      return `private:${encodeURIComponent(ref.owner)}`;
    case 'room':
      if (ref.room === null) throw new Error('a room-scoped item needs its room');
      return `room:${encodeURIComponent(ref.room)}`;
    case 'shared':
      return 'shared';
  }
}

/** The keys a reader may see: its own private memory, the rooms it is a member of (checked by the caller), and shared. */
export function readableScopes(reader: { id: string; rooms: readonly string[] }): string[] {
  return [
    scopeKey({ scope: 'private', owner: reader.id, room: null }),
    ...reader.rooms.map((room) => scopeKey({ scope: 'room', owner: reader.id, room })),
    'shared',
  ];
}

/** Whether an item was believed at `asOf` (transaction time): recorded by then and not yet superseded. */
export function believedAt(item: Pick<KnowledgeItem, 'recordedAt' | 'supersededAt'>, asOf: string): boolean {
  const t = Date.parse(asOf);
  return Date.parse(item.recordedAt) <= t && (item.supersededAt === null || Date.parse(item.supersededAt) > t);
}

export interface KnowledgeQuery {
  /** Scope keys (scopeKey); required, and an empty list matches nothing. */
  scopes: readonly string[];
  text: string;
  /** Only items believed at this time. @defaultValue now */
  asOf?: string;
  limit: number;
  /** Entity keys to boost (the query's own entities). */
  entities?: readonly string[];
  /** The query's vector computed elsewhere (benchmarks measure search apart from embedding); skips embedding. */
  vector?: ArrayLike<number>;
}

export interface KnowledgeHit {
  item: KnowledgeItem;
  /** The fused score times the decay, higher is better. */
  score: number;
  /** The item's decay score now (retention.ts). */
  decay: number;
  /** Each signal's rank (1-based) in its own list, null when absent. */
  ranks: { vector: number | null; text: number | null; entity: number | null; recency: number | null };
}

export interface KnowledgeIndex {
  /** Writes items (insert or replace by id), each in its own scope key; vectors are computed by the implementation. */
  upsert(items: readonly KnowledgeItem[]): Promise<{ written: number }>;
  search(query: KnowledgeQuery): Promise<KnowledgeHit[]>;
  /** Stored items in the scopes, by id (dedup against what is stored, link expansion). */
  get(scopes: readonly string[], ids: readonly string[]): Promise<KnowledgeItem[]>;
  /** Deletes items by id within the scopes; returns how many went. */
  delete(scopes: readonly string[], ids: readonly string[]): Promise<number>;
}
