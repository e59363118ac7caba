/**
 * The LanceDB-backed knowledge index: one table per index generation (the
 * vector catalog's collection `knowledge`, one generation per embedding
 * identity: model, digest, dimensions), every tenant's items in it.
 *
 * A model change builds a new generation while the old one keeps serving:
 * from then on every write goes to both (each embedded in its own space),
 * `vectors.maintain` copies what the new one lacks (copyKnowledge below) and
 * then switches. Reads only ever use the serving generation, with its own
 * model: no answer mixes two embedding spaces. When the serving model cannot
 * embed in its space any more (removed, or pulled again with another
 * digest), the new generation serves at once and the old one's items are
 * copied in behind it; deletes and rewrites reach every generation table
 * still on disk, so a copy never brings back what was forgotten.
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
  identityHash,
  type EmbeddingModel,
  type Generation,
  type IndexCatalog,
  type IndexIdentity,
} from '../vectors/index.ts';
import { KnowledgeItem } from '../../shared/index.ts';
import { isAbout } from './about.ts';
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
  /** The vector catalog: knowledge's generations are its collection `knowledge`. */
  catalog: IndexCatalog;
  /** How long a process trusts the generations it read; a new build starts copying only after twice this. @defaultValue 5000 */
  refreshMs?: number;
}

/** The catalog collection of knowledge's generations. */
export const knowledgeCollection = 'knowledge';
/** The identity's text-shaping part: an item's text, fitted to the model's window. */
export const knowledgeShaping = 'knowledge-1';

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

/** One generation's table, with the model that embeds in its space. */
export interface KnowledgeSpace {
  gen: Generation;
  table: VectorTable;
  model: string;
  counter: TokenCounter;
  maxTokens: number;
}

export interface OpenedKnowledge {
  /** Every read uses it, and its model embeds every query. */
  serving: KnowledgeSpace;
  /** Generations being built whose model embeds in their space now: new items go to them too. */
  building: KnowledgeSpace[];
  /** Every building generation's table: deletes and rewrites reach them all. */
  buildingTables: VectorTable[];
  /** Tables of retired generations still on disk (a copy may still read them): deletes and rewrites reach them. */
  retired: VectorTable[];
}

/** The tables of all tenants, per index generation; hands out one tenant's repository. */
export class KnowledgeStore {
  private cached?: { at: number; opened: Promise<OpenedKnowledge> };

  constructor(private readonly opts: KnowledgeStoreOptions) {}

  get refreshMs(): number {
    return this.opts.refreshMs ?? 5000;
  }

  /** The generations as this process uses them now (re-read every `refreshMs`). */
  open(signal?: AbortSignal): Promise<OpenedKnowledge> {
    if (this.cached && Date.now() - this.cached.at < this.refreshMs) return this.cached.opened;
    const opened = this.resolve(signal, true);
    const entry = { at: Date.now(), opened };
    this.cached = entry;
    opened.catch(() => {
      if (this.cached === entry) this.cached = undefined;
    });
    return opened;
  }

  /** Forgets the generations read (the next use reads them again): after a promotion, say. */
  invalidate(): void {
    this.cached = undefined;
  }

  /** The configured model's identity. */
  async identity(signal?: AbortSignal): Promise<{ identity: IndexIdentity; model: EmbeddingModel }> {
    const m = await this.opts.embedder.describe(this.opts.model, signal);
    return { identity: { model: m.model, digest: m.digest, dimensions: m.dimensions, chunker: knowledgeShaping }, model: m };
  }

  /** A generation's table (created on first use). */
  table(gen: Generation): Promise<VectorTable> {
    return this.opts.vectors.table({ name: gen.tableName, dimensions: gen.identity.dimensions, fields });
  }

  /**
   * Its model, when it still embeds in the generation's space (same digest and dimensions); undefined
   * when Ollama answered with another build of it; an error (not installed, unreachable) propagates.
   */
  async embedsIn(gen: Generation, signal?: AbortSignal): Promise<EmbeddingModel | undefined> {
    const m = await this.opts.embedder.describe(gen.identity.model, signal);
    return m.digest === gen.identity.digest && m.dimensions === gen.identity.dimensions ? m : undefined;
  }

  async space(gen: Generation, m: EmbeddingModel): Promise<KnowledgeSpace> {
    // [CLS] and [SEP] count against the window too.
    return { gen, table: await this.table(gen), model: gen.identity.model, counter: tokenCounter(m.tokenizer), maxTokens: m.contextLength - 2 };
  }

  /**
   * The configured identity's generation, made if missing (serving when knowledge has none, building
   * beside the serving one), unless knowledge retired that identity: a process still configured with a
   * model that was replaced (an old process in a rolling deploy) never brings it back.
   */
  async current(identity: IndexIdentity): Promise<{ current: Generation | undefined; gens: Generation[] }> {
    const hash = identityHash(identity);
    const gens = await this.opts.catalog.list(knowledgeCollection);
    const mine = gens.find((g) => g.identityHash === hash);
    if (mine) return { current: mine.state === 'retired' ? undefined : mine, gens };
    const made = await this.opts.catalog.ensure(knowledgeCollection, identity, 'knowledge');
    return { current: made, gens: await this.opts.catalog.list(knowledgeCollection) };
  }

  private async resolve(signal: AbortSignal | undefined, mayPromote: boolean): Promise<OpenedKnowledge> {
    const { catalog } = this.opts;
    const { identity, model } = await this.identity(signal);
    const { current, gens } = await this.current(identity);
    const serving = gens.find((g) => g.state === 'serving');
    if (!serving) throw new Error('the knowledge index has no serving generation');
    // An outage or a model not installed says nothing about the space: it propagates (the read fails), and
    // maintenance, which needs only the new model, copies and switches. Only another build of the same model
    // (a digest that differs) proves the serving space can no longer be asked anything.
    const servingModel = serving.id === current?.id ? model : await this.embedsIn(serving, signal);
    if (!servingModel) {
      // The configured generation serves at once, and vectors.maintain copies the old one's items in behind it.
      if (mayPromote && current?.state === 'building') {
        await catalog.promote(current.id);
        return this.resolve(signal, false);
      }
      throw new Error(`the knowledge index's model ${serving.identity.model} no longer embeds in its space, and no other generation can serve`);
    }
    const building: KnowledgeSpace[] = [];
    const buildingTables: VectorTable[] = [];
    for (const g of gens.filter((x) => x.state === 'building')) {
      buildingTables.push(await this.table(g));
      // New items go where their model can embed them now; the copy brings the rest.
      const m = g.id === current?.id ? model : await this.embedsIn(g, signal).catch(() => undefined);
      if (m) building.push(await this.space(g, m));
    }
    const retired: VectorTable[] = [];
    for (const g of gens.filter((x) => x.state === 'retired')) {
      const t = await this.opts.vectors.existing(g.tableName);
      if (t) retired.push(t);
    }
    return { serving: await this.space(serving, servingModel), building, buildingTables, retired };
  }

  /**
   * The one way to items: a repository confined to `tenant`. `pinned`: it reads the generations once and
   * keeps that view for its life (a job that embeds, compares and writes must stay in one space).
   */
  forTenant(tenant: string, opts: { pinned?: boolean } = {}): KnowledgeRepository {
    return new KnowledgeRepository(this, this.opts.embedder, tenant, opts.pinned ?? false);
  }
}

/** One tenant's items. Every method ANDs the tenant and the given scope keys into the prefilter. */
export class KnowledgeRepository implements KnowledgeIndex {
  private pinnedView?: Promise<OpenedKnowledge>;

  constructor(
    private readonly store: KnowledgeStore,
    private readonly embedder: Embedder,
    readonly tenant: string,
    private readonly pinned = false,
  ) {}

  /** The generations this repository uses: the store's current view, or the one it pinned. */
  private view(signal?: AbortSignal): Promise<OpenedKnowledge> {
    if (!this.pinned) return this.store.open(signal);
    const v = (this.pinnedView ??= this.store.open(signal));
    v.catch(() => (this.pinnedView = undefined));
    return v;
  }

  /**
   * Deletes and rewrites go to every table that holds items, sources of a copy first (retired, then
   * serving, then building): a copy that has read an item finds it changed or gone when it reads again.
   */
  private async everyTable(signal?: AbortSignal): Promise<{ serving: VectorTable; tables: VectorTable[] }> {
    const v = await this.view(signal);
    return { serving: v.serving.table, tables: [...v.retired, v.serving.table, ...v.buildingTables] };
  }

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
    return embedIn((await this.view(signal)).serving, this.embedder, texts, signal);
  }

  /**
   * Writes items (by id) in one commit per generation, then brings the
   * indexes up to date (full text included: a row is searchable by text once
   * maintained). A generation being built gets them too, embedded in its own
   * space. `maintain: false` leaves that to a later write or
   * `vectors.maintain`, for a batch of writes. `vectors` are the serving
   * space's.
   */
  async upsert(
    items: readonly KnowledgeItem[],
    opts: { vectors?: ReadonlyMap<string, ArrayLike<number>>; signal?: AbortSignal; maintain?: boolean } = {},
  ): Promise<{ written: number }> {
    if (!items.length) return { written: 0 };
    const { serving, building } = await this.view(opts.signal);
    const need = items.filter((i) => !opts.vectors?.has(i.text)).map((i) => i.text);
    const embedded = await embedIn(serving, this.embedder, need, opts.signal);
    const vectors = new Map<string, ArrayLike<number>>(opts.vectors ?? []);
    need.forEach((t, i) => vectors.set(t, embedded[i]!));
    const r = await serving.table.upsert(items.map((item) => itemRow(this.tenant, item, vectors.get(item.text)!)));
    if (opts.maintain !== false) await serving.table.maintain();
    for (const b of building) {
      const theirs = await embedIn(
        b,
        this.embedder,
        items.map((i) => i.text),
        opts.signal,
      );
      await b.table.upsert(items.map((item, i) => itemRow(this.tenant, item, theirs[i]!)));
      if (opts.maintain !== false) await b.table.maintain();
    }
    return { written: r.inserted + r.updated };
  }

  /** Rewrites stored items (supersede, restore) with their stored vectors, in every generation that holds them. */
  async rewrite(items: readonly KnowledgeItem[]): Promise<number> {
    if (!items.length) return 0;
    const { serving, tables } = await this.everyTable();
    let n = 0;
    for (const table of tables) {
      const written = await rewriteIn(table, this.tenant, items);
      if (table === serving) n = written;
    }
    return n;
  }

  /** Items by id; soft-expired ones only with `includeExpired` (pinning can bring one back before its purge). */
  async get(scopes: readonly string[], ids: readonly string[], opts: { includeExpired?: boolean } = {}): Promise<KnowledgeItem[]> {
    if (!ids.length || !scopes.length) return [];
    const { table } = (await this.view()).serving;
    const out: KnowledgeItem[] = [];
    const where = (slice: string[]) => (opts.includeExpired ? this.where({ item_id: { in: slice } }) : this.live({ item_id: { in: slice } }));
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await table.rows(scopes, where(ids.slice(i, i + 500)), { limit: 500 });
      out.push(...rows.map((r) => parseItem(r.fields.item)));
    }
    return out;
  }

  /** Deletes items from every generation table still on disk (a copy into a new generation never brings them back). */
  async delete(scopes: readonly string[], ids: readonly string[]): Promise<number> {
    if (!ids.length || !scopes.length) return 0;
    const { serving, tables } = await this.everyTable();
    let n = 0;
    for (const table of tables) {
      let deleted = 0;
      for (let i = 0; i < ids.length; i += 500) deleted += await table.delete(scopes, this.where({ item_id: { in: ids.slice(i, i + 500) } }));
      if (table === serving) n = deleted;
    }
    return n;
  }

  /** Current items nearest to a vector in the scopes (dedup against what is stored). */
  async nearest(
    scopes: readonly string[],
    vector: ArrayLike<number>,
    opts: { limit: number; speaker?: string | null; excludeSource?: string },
  ): Promise<KnowledgeItem[]> {
    if (!scopes.length) return [];
    const { table } = (await this.view()).serving;
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
    const { table, model } = (await this.view(q.signal)).serving;
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
    // The entity signal votes for the items about a queried entity (about.ts), not for everything its speaker said.
    const about = (id: string) => {
      const i = items.get(id)!;
      const speakerKey = i.speaker ? nameKey(i.speaker) : null;
      return entities.some((key) => isAbout({ text: i.text, entities: i.entities, speakerKey }, key));
    };
    const aboutEntity = byEntity.filter((h) => about(h.id));
    const when = (i: KnowledgeItem) => Date.parse(i.validFrom ?? i.recordedAt);
    const byRecency = [...items.values()].sort((a, b) => when(b) - when(a) || a.id.localeCompare(b.id));
    const fused = reciprocalRankFusion<string>(
      [
        { items: byVector.map((h) => h.id), weight: w.vector },
        { items: byText.map((h) => h.id), weight: w.text },
        { items: aboutEntity.map((h) => h.id), weight: w.entity },
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
    const { table } = (await this.view()).serving;
    return (await table.rows(scopes, this.where())).map((r) => parseItem(r.fields.item));
  }

  /** Ids of items in the scopes that expired before `t` (purge). */
  async expiredBefore(scopes: readonly string[], t: number): Promise<string[]> {
    if (!scopes.length) return [];
    const { table } = (await this.view()).serving;
    return (await table.rows(scopes, this.where({ expires_ms: { lt: t } }))).map((r) => r.id);
  }

  /** How many items the scopes hold (current and superseded). */
  async count(scopes: readonly string[]): Promise<number> {
    const { table } = (await this.view()).serving;
    return table.count(scopes, this.where());
  }
}

/** The embedded text's hash (the store reuses a vector per hash). */
function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function parseItem(json: unknown): KnowledgeItem {
  return KnowledgeItem.parse(JSON.parse(String(json)));
}

/** An item as a row of a knowledge table. */
export function itemRow(tenant: string, item: KnowledgeItem, vector: ArrayLike<number>): VectorRow {
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
      tenant,
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

/**
 * Vectors for texts in one generation's space, through the one Ollama
 * client; a text already stored there reuses its vector. A statement longer
 * than the model's window (a run-on sentence) is embedded by the prefix that
 * fits, rather than failing its whole source; its full text is still what the
 * full-text index reads.
 */
async function embedIn(space: KnowledgeSpace, embedder: Embedder, texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
  if (!texts.length) return [];
  const unique = [...new Set(texts)];
  const known = await space.table.vectorsByHash(unique.map(hashText));
  const missing = unique.filter((t) => !known.has(hashText(t)));
  const fit = (t: string) => (space.counter.count(t) <= space.maxTokens ? t : fittingPrefix(t, space.counter, space.maxTokens));
  const { vectors } = await embedder.embed(space.model, missing.map(fit), signal ? { signal } : {});
  missing.forEach((t, i) => known.set(hashText(t), vectors[i]!));
  return texts.map((t) => known.get(hashText(t))!);
}

/** Rewrites the stored rows of these items in one table, keeping each row's vector; answers how many it held. */
async function rewriteIn(table: VectorTable, tenant: string, items: readonly KnowledgeItem[]): Promise<number> {
  const byId = new Map(items.map((i) => [i.id, i]));
  const stored = await table.rows([...new Set(items.map(scopeKey))], { tenant, item_id: { in: [...byId.keys()] } }, { withVectors: true });
  const rows = stored.filter((s) => byId.has(s.id)).map((s) => itemRow(tenant, byId.get(s.id)!, s.vector!));
  if (rows.length) await table.upsert(rows);
  return rows.length;
}

/**
 * Copies into a generation what it lacks of another table (knowledge's
 * rebuild into a new embedding space, and the backfill behind a generation
 * that had to serve at once): each missing item re-embedded in the target's
 * space and inserted only if still absent (a write made meanwhile went to
 * both and is newer). Then it reads those items again from the source: one
 * forgotten meanwhile is deleted from the target, one rewritten meanwhile is
 * rewritten there. Writers reach both tables from before the copy starts
 * (`refreshMs`), so after this pass the target holds what the source holds.
 */
export async function copyKnowledge(
  from: VectorTable,
  to: KnowledgeSpace,
  embedder: Embedder,
  signal?: AbortSignal,
): Promise<{ copied: number; deleted: number; rewritten: number }> {
  const have = new Set(await to.table.ids());
  const missing = (await from.ids()).filter((id) => !have.has(id));
  let copied = 0;
  let deleted = 0;
  let rewritten = 0;
  for (let i = 0; i < missing.length; i += 256) {
    if (signal?.aborted) throw signal.reason;
    const rows = await from.rowsById(missing.slice(i, i + 256));
    const items = rows.map((r) => ({ tenant: r.fields.tenant as string, item: parseItem(r.fields.item) }));
    const vectors = await embedIn(
      to,
      embedder,
      items.map((x) => x.item.text),
      signal,
    );
    const r = await to.table.upsert(
      items.map((x, j) => itemRow(x.tenant, x.item, vectors[j]!)),
      { onlyNew: true },
    );
    copied += r.inserted;
    // What changed in the source while this batch was read and embedded: one delete and one rewrite per
    // tenant for the whole batch.
    const now = new Map((await from.rowsById(rows.map((x) => x.id))).map((x) => [x.id, x]));
    const gone = rows.filter((row) => !now.has(row.id));
    if (gone.length) deleted += await to.table.delete([...new Set(gone.map((g) => g.scope))], { item_id: { in: gone.map((g) => g.id) } });
    const changed = new Map<string, KnowledgeItem[]>();
    for (const [j, row] of rows.entries()) {
      const current = now.get(row.id);
      if (current && current.fields.item !== row.fields.item)
        changed.set(items[j]!.tenant, [...(changed.get(items[j]!.tenant) ?? []), parseItem(current.fields.item)]);
    }
    for (const [tenant, list] of changed) rewritten += await rewriteIn(to.table, tenant, list);
  }
  if (missing.length) await to.table.maintain();
  return { copied, deleted, rewritten };
}
