/**
 * The LanceDB-backed knowledge index: one table per embedding identity
 * (`knowledge_<hash of model and digest>`), every tenant's items in it.
 *
 * Isolation is one rule, held in one place: `KnowledgeRepository` is built
 * for one tenant (the user a source belongs to) and every read, write and
 * delete it makes ANDs `tenant = <tenant>` and `scope IN (<scope keys>)`
 * into the LanceDB prefilter (platform/vectors compiles both as SQL
 * literals, and an empty scope list matches nothing). Nothing else in Parley
 * opens the table. An agent's private memory is the scope key
 * `private:<agent>`; a reader lists the keys it may see (`readableScopes`).
 *
 * A row carries the item's vector (its text, embedded) and full-text entry,
 * filterable columns (class, topic, entity keys, speaker, source, message
 * ids, the bi-temporal instants in epoch ms) and the item itself as JSON, so
 * what comes back is what went in. `superseded_ms` is `NOT_SUPERSEDED` (far
 * future) while an item is current, so "believed at t" is two range
 * conditions a prefilter can take: recorded_ms ≤ t < superseded_ms.
 */
import { createHash } from 'node:crypto';
import {
  analyzeText,
  fittingPrefix,
  reciprocalRankFusion,
  tokenCounter,
  type Embedder,
  type TokenCounter,
  type VectorRow,
  type VectorStore,
  type VectorTable,
  type Where,
} from '../vectors/index.ts';
import { KnowledgeItem } from '../../shared/index.ts';
import { extractEntities, nameKey } from './entities.ts';
import { decayOf } from './retention.ts';
import { scopeKey, type KnowledgeHit, type KnowledgeIndex, type KnowledgeQuery } from './knowledge-index.ts';

/** Epoch ms standing for "not superseded" (year 275760, the largest Date). */
export const NOT_SUPERSEDED = 8.64e15;

export interface KnowledgeStoreOptions {
  vectors: VectorStore;
  embedder: Embedder;
  /** The embedding model (Ollama's name). */
  model: string;
}

export interface FusionWeights {
  vector: number;
  text: number;
  entity: number;
  recency: number;
}

/**
 * RRF weights of the four signals. Recency only orders candidates the other
 * three found, so it breaks near-ties towards the newer statement rather than
 * pulling in unrelated recent items. @defaultValue vector 1, text 1, entity 1, recency 0.5
 */
export const defaultFusionWeights: FusionWeights = { vector: 1, text: 1, entity: 1, recency: 0.5 };

const fields = {
  /** The row id again: core columns are not filterable, declared fields are. */
  item_id: 'string',
  tenant: 'string',
  owner: 'string',
  room: 'string',
  class: 'string',
  topic: 'string',
  entities: 'string[]',
  speaker: 'string',
  source_id: 'string',
  message_ids: 'string[]',
  valid_from_ms: 'float',
  recorded_ms: 'float',
  superseded_ms: 'float',
  /** retention.ts: when the item soft-expires; null (and in rows written before it existed): never. */
  expires_ms: 'float',
  item: 'string',
} as const;

interface Opened {
  table: VectorTable;
  model: string;
  counter: TokenCounter;
  maxTokens: number;
}

/** The tables of all tenants, per embedding identity; hands out one tenant's repository. */
export class KnowledgeStore {
  private table?: Promise<Opened>;

  constructor(private readonly opts: KnowledgeStoreOptions) {}

  /** The table for the model's current identity, created on first use. */
  open(signal?: AbortSignal): Promise<Opened> {
    const opening = (this.table ??= (async () => {
      const m = await this.opts.embedder.describe(this.opts.model, signal);
      const name = `knowledge_${createHash('sha256').update(`${m.model}\0${m.digest}\0${m.dimensions}`).digest('hex').slice(0, 16)}`;
      // [CLS] and [SEP] count against the window too.
      return {
        table: await this.opts.vectors.table({ name, dimensions: m.dimensions, fields }),
        model: m.model,
        counter: tokenCounter(m.tokenizer),
        maxTokens: m.contextLength - 2,
      };
    })());
    opening.catch(() => (this.table = undefined));
    return opening;
  }

  /** The one way to items: a repository confined to `tenant`. */
  forTenant(tenant: string): KnowledgeRepository {
    return new KnowledgeRepository(this, this.opts.embedder, tenant);
  }
}

/** One tenant's items. Every method ANDs the tenant and the given scope keys into the prefilter. */
export class KnowledgeRepository implements KnowledgeIndex {
  constructor(
    private readonly store: KnowledgeStore,
    private readonly embedder: Embedder,
    readonly tenant: string,
  ) {}

  /** The prefilter's non-scope part: the tenant, always, and the caller's conditions. */
  private where(extra: Where = {}): Where {
    return { ...extra, tenant: this.tenant };
  }

  /** What every read adds: not soft-expired at `now` (an expired item is never returned). */
  private live(extra: Where = {}, now = Date.now()): Where {
    return this.where({ ...extra, expires_ms: { gt: now, orNull: true } });
  }

  /**
   * Vectors for texts, through the one Ollama client; a text already stored
   * reuses its vector. A statement longer than the model's window (a run-on
   * sentence) is embedded by the prefix that fits, rather than failing its
   * whole source; its full text is still what the full-text index reads.
   */
  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (!texts.length) return [];
    const { table, model, counter, maxTokens } = await this.store.open(signal);
    const unique = [...new Set(texts)];
    const known = await table.vectorsByHash(unique.map(hashText));
    const missing = unique.filter((t) => !known.has(hashText(t)));
    const fit = (t: string) => (counter.count(t) <= maxTokens ? t : fittingPrefix(t, counter, maxTokens));
    const { vectors } = await this.embedder.embed(model, missing.map(fit), signal ? { signal } : {});
    missing.forEach((t, i) => known.set(hashText(t), vectors[i]!));
    return texts.map((t) => known.get(hashText(t))!);
  }

  /**
   * Writes items (by id) in one commit, then brings the indexes up to date
   * (full text included: a row is searchable by text once maintained).
   * `maintain: false` leaves that to a later write or `vectors.maintain`, for a batch of writes.
   */
  async upsert(
    items: readonly KnowledgeItem[],
    opts: { vectors?: ReadonlyMap<string, ArrayLike<number>>; signal?: AbortSignal; maintain?: boolean } = {},
  ): Promise<{ written: number }> {
    if (!items.length) return { written: 0 };
    const { table } = await this.store.open(opts.signal);
    const need = items.filter((i) => !opts.vectors?.has(i.text)).map((i) => i.text);
    const embedded = await this.embed(need, opts.signal);
    const vectors = new Map<string, ArrayLike<number>>(opts.vectors ?? []);
    need.forEach((t, i) => vectors.set(t, embedded[i]!));
    const rows: VectorRow[] = items.map((item) => this.toRow(item, vectors.get(item.text)!));
    const r = await table.upsert(rows);
    if (opts.maintain !== false) await table.maintain();
    return { written: r.inserted + r.updated };
  }

  /** Rewrites stored items (supersede, restore) with their stored vectors. */
  async rewrite(items: readonly KnowledgeItem[]): Promise<number> {
    if (!items.length) return 0;
    const { table } = await this.store.open();
    const byId = new Map(items.map((i) => [i.id, i]));
    const stored = await table.rows([...new Set(items.map(scopeKey))], this.where({ item_id: { in: [...byId.keys()] } }), { withVectors: true });
    const rows = stored.filter((s) => byId.has(s.id)).map((s) => this.toRow(byId.get(s.id)!, s.vector!));
    if (rows.length) await table.upsert(rows);
    return rows.length;
  }

  /** Items by id; soft-expired ones only with `includeExpired` (pinning can bring one back before its purge). */
  async get(scopes: readonly string[], ids: readonly string[], opts: { includeExpired?: boolean } = {}): Promise<KnowledgeItem[]> {
    if (!ids.length || !scopes.length) return [];
    const { table } = await this.store.open();
    const out: KnowledgeItem[] = [];
    const where = (slice: string[]) => (opts.includeExpired ? this.where({ item_id: { in: slice } }) : this.live({ item_id: { in: slice } }));
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await table.rows(scopes, where(ids.slice(i, i + 500)), { limit: 500 });
      out.push(...rows.map((r) => parseItem(r.fields.item)));
    }
    return out;
  }

  async delete(scopes: readonly string[], ids: readonly string[]): Promise<number> {
    if (!ids.length || !scopes.length) return 0;
    const { table } = await this.store.open();
    let n = 0;
    for (let i = 0; i < ids.length; i += 500) n += await table.delete(scopes, this.where({ item_id: { in: ids.slice(i, i + 500) } }));
    return n;
  }

  /** Current items nearest to a vector in the scopes (dedup against what is stored). */
  async nearest(
    scopes: readonly string[],
    vector: ArrayLike<number>,
    opts: { limit: number; speaker?: string | null; excludeSource?: string },
  ): Promise<KnowledgeItem[]> {
    if (!scopes.length) return [];
    const { table } = await this.store.open();
    if ((await table.count(scopes, this.where())) === 0) return [];
    const where: Where = this.live({ superseded_ms: { gte: NOT_SUPERSEDED }, ...(opts.speaker != null ? { speaker: opts.speaker } : {}) });
    const hits = await table.search({ scopes, where, mode: 'vector', vector, limit: opts.limit + 20, fields: ['item', 'source_id'] });
    return hits
      .filter((h) => h.fields.source_id !== opts.excludeSource)
      .slice(0, opts.limit)
      .map((h) => parseItem(h.fields.item));
  }

  /**
   * Fused search: vector, full text, entities (items mentioning the query's
   * entities, by vector similarity) and recency (the union, newest first),
   * combined with weighted RRF over items believed at `asOf`.
   */
  async search(q: KnowledgeQuery & { weights?: Partial<FusionWeights>; signal?: AbortSignal }): Promise<KnowledgeHit[]> {
    if (!q.scopes.length || q.limit < 1) return [];
    const { table, model } = await this.store.open(q.signal);
    const t = q.asOf === undefined ? Date.now() : Date.parse(q.asOf);
    // Believed at t, and not expired now (an expired item is gone for every question, "as of" ones too).
    const now = Date.now();
    const where = this.live({ recorded_ms: { lte: t }, superseded_ms: { gt: t } }, now);
    if ((await table.count(q.scopes, where)) === 0) return [];
    const w = { ...defaultFusionWeights, ...q.weights };
    const candidates = Math.max(50, q.limit * 4);
    const entities = [...new Set(q.entities ?? extractEntities(q.text).map((e) => e.key))];
    const vector = q.vector ?? (await this.embedder.embedQuery(model, q.text, q.signal));
    const base = { scopes: q.scopes, limit: candidates, fields: ['item'] as const };
    const [byVector, byText, byEntity] = await Promise.all([
      table.search({ ...base, where, mode: 'vector', vector }),
      table.search({ ...base, where, mode: 'text', text: q.text }),
      entities.length ? table.search({ ...base, where: { ...where, entities: { in: entities } }, mode: 'vector', vector }) : Promise.resolve([]),
    ]);
    const items = new Map<string, KnowledgeItem>();
    for (const h of [...byVector, ...byText, ...byEntity]) if (!items.has(h.id)) items.set(h.id, parseItem(h.fields.item));
    const when = (i: KnowledgeItem) => Date.parse(i.validFrom ?? i.recordedAt);
    const byRecency = [...items.values()].sort((a, b) => when(b) - when(a) || a.id.localeCompare(b.id));
    const fused = reciprocalRankFusion<string>(
      [
        { items: byVector.map((h) => h.id), weight: w.vector },
        { items: byText.map((h) => h.id), weight: w.text },
        { items: byEntity.map((h) => h.id), weight: w.entity },
        { items: byRecency.map((i) => i.id), weight: w.recency },
      ],
      (id) => id,
    );
    // Decay scales the fused score: of two equally relevant items, the one said more recently (or pinned) leads.
    return fused
      .map((f) => {
        const item = items.get(f.item)!;
        const decay = decayOf(item, now);
        return {
          item,
          score: f.score * decay,
          decay,
          ranks: { vector: f.ranks[0] ?? null, text: f.ranks[1] ?? null, entity: f.ranks[2] ?? null, recency: f.ranks[3] ?? null },
        };
      })
      .sort((a, b) => b.score - a.score)
      .slice(0, q.limit);
  }

  /** Every stored item in the scopes, soft-expired ones included (retention changes recompute them). */
  async all(scopes: readonly string[]): Promise<KnowledgeItem[]> {
    if (!scopes.length) return [];
    const { table } = await this.store.open();
    return (await table.rows(scopes, this.where())).map((r) => parseItem(r.fields.item));
  }

  /** Ids of items in the scopes that expired before `t` (purge). */
  async expiredBefore(scopes: readonly string[], t: number): Promise<string[]> {
    if (!scopes.length) return [];
    const { table } = await this.store.open();
    return (await table.rows(scopes, this.where({ expires_ms: { lt: t } }))).map((r) => r.id);
  }

  /** How many items the scopes hold (current and superseded). */
  async count(scopes: readonly string[]): Promise<number> {
    const { table } = await this.store.open();
    return table.count(scopes, this.where());
  }

  private toRow(item: KnowledgeItem, vector: ArrayLike<number>): VectorRow {
    return {
      id: item.id,
      scope: scopeKey(item),
      text: item.text,
      // The full-text entry names the speaker too; the vector is the statement's own (dedup compares statements).
      ...(item.speaker ? { searchText: analyzeText(`${item.speaker} ${item.text}`) } : {}),
      contentHash: hashText(item.text),
      vector,
      fields: {
        item_id: item.id,
        tenant: this.tenant,
        owner: item.owner,
        room: item.room,
        class: item.class,
        topic: item.topic,
        // Who said it is part of what it is about: "What is Ada's usual coffee?" finds what Ada said.
        entities: [...new Set([...item.entities.map((e) => e.key), ...(item.speaker ? [nameKey(item.speaker)] : [])])],
        speaker: item.speaker,
        source_id: item.provenance.sourceId,
        message_ids: item.provenance.messageIds,
        valid_from_ms: item.validFrom === null ? null : Date.parse(item.validFrom),
        recorded_ms: Date.parse(item.recordedAt),
        superseded_ms: item.supersededAt === null ? NOT_SUPERSEDED : Date.parse(item.supersededAt),
        expires_ms: item.expiresAt === null ? null : Date.parse(item.expiresAt),
        item: JSON.stringify(item),
      },
    };
  }
}

/** The embedded text's hash (the store reuses a vector per hash). */
function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function parseItem(json: unknown): KnowledgeItem {
  return KnowledgeItem.parse(JSON.parse(String(json)));
}
