/**
 * Postgres's part of knowledge (migration 20261206120001_knowledge): sources,
 * one outcome per message, the refs that say which sources each item stands
 * on, and links. Items themselves live in LanceDB (lance-index.ts).
 * Every query here names the owner (the tenant) it is confined to.
 */
import type { Db } from '../connections/index.ts';
import type { ExtractionOutcome, Link, RetentionSettings } from '../../shared/index.ts';

export interface SourceRow {
  id: string;
  owner_id: string;
  kind: 'document' | 'conversation';
  title: string;
  scope: 'private' | 'room' | 'shared';
  scope_owner: string;
  room: string | null;
  scope_key: string;
  messages: number;
  job_id: string | null;
  status: 'pending' | 'ready' | 'failed' | 'forgetting';
  items: number;
  error: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface OutcomeRow {
  message_id: string | null;
  outcome: ExtractionOutcome['outcome'];
  items: number;
  merged: number;
  reason: string | null;
}

export interface RetentionRow {
  owner_id: string;
  scope_key: string;
  scope: 'private' | 'room' | 'shared';
  room: string | null;
  ttl_seconds: number | null;
  half_life_seconds: number | null;
  updated_at: Date;
}

export function createKnowledgeRecords(db: Db) {
  const sources = () => db<SourceRow>('knowledge_sources');
  const records = {
    async insertSource(
      row: Pick<SourceRow, 'id' | 'owner_id' | 'kind' | 'title' | 'scope' | 'scope_owner' | 'room' | 'scope_key' | 'messages'>,
    ): Promise<SourceRow> {
      const [r] = await sources().insert(row).returning('*');
      return r!;
    },
    async setJob(id: string, jobId: string): Promise<void> {
      await sources().where({ id }).update({ job_id: jobId });
    },
    /** A source of this owner; without `owner`, any (the worker, which reads the owner from it). */
    getSource(id: string, owner?: string): Promise<SourceRow | undefined> {
      const q = sources().where({ id });
      if (owner !== undefined) q.andWhere({ owner_id: owner });
      return q.first();
    },
    listSources(owner: string, limit: number): Promise<SourceRow[]> {
      return sources().where({ owner_id: owner }).whereNot({ status: 'forgetting' }).orderBy('created_at', 'desc').limit(limit);
    },
    /** The room scope keys this owner has sources in. */
    async roomScopes(owner: string): Promise<string[]> {
      const rows = await sources().where({ owner_id: owner, scope: 'room' }).distinct('scope_key');
      return rows.map((r) => r.scope_key);
    },
    outcomes(sourceId: string): Promise<OutcomeRow[]> {
      return db<OutcomeRow & { source_id: string; seq: number }>('knowledge_outcomes')
        .where({ source_id: sourceId })
        .orderBy('seq')
        .select('message_id', 'outcome', 'items', 'merged', 'reason');
    },
    /**
     * The end of an extraction, in one transaction: outcomes (replacing an
     * earlier attempt's), the refs of items written or merged into, the
     * links, and the source's status. Idempotent, so a retried job lands the same.
     */
    async finishExtraction(
      sourceId: string,
      owner: string,
      scopeKey: string,
      r: { outcomes: readonly ExtractionOutcome[]; refs: readonly string[]; links: readonly Link[]; items: number; status: 'ready' | 'failed'; error?: string },
      /** Only while the source is still `pending` (a run that finished meanwhile keeps its own outcomes). */
      opts: { whilePending?: boolean } = {},
    ): Promise<boolean> {
      return db.transaction(async (trx) => {
        const q = trx<SourceRow>('knowledge_sources').where({ id: sourceId }).whereNot({ status: 'forgetting' });
        if (opts.whilePending) q.andWhere({ status: 'pending' });
        const live = await q.forUpdate().first();
        if (!live) return false;
        await trx('knowledge_outcomes').where({ source_id: sourceId }).delete();
        const outcomes = r.outcomes.map((o, seq) => ({
          source_id: sourceId,
          seq,
          message_id: o.messageId,
          outcome: o.outcome,
          items: o.items,
          merged: o.merged,
          reason: o.reason ?? null,
        }));
        for (let i = 0; i < outcomes.length; i += 1000) await trx('knowledge_outcomes').insert(outcomes.slice(i, i + 1000));
        const refs = [...new Set(r.refs)].map((item_id) => ({ item_id, source_id: sourceId, owner_id: owner, scope_key: scopeKey }));
        for (let i = 0; i < refs.length; i += 1000)
          await trx('knowledge_item_refs')
            .insert(refs.slice(i, i + 1000))
            .onConflict(['item_id', 'source_id'])
            .ignore();
        await trx('knowledge_links').where({ source_id: sourceId }).delete();
        const links = r.links.map((l) => ({
          source_id: sourceId,
          owner_id: owner,
          type: l.type,
          from_kind: l.from.kind,
          from_id: l.from.id,
          to_kind: l.to.kind,
          to_id: l.to.id,
          basis: l.basis,
        }));
        for (let i = 0; i < links.length; i += 1000) await trx('knowledge_links').insert(links.slice(i, i + 1000));
        await trx('knowledge_sources')
          .where({ id: sourceId })
          .update({ status: r.status, items: r.items, error: r.error ?? null, updated_at: trx.fn.now() });
        return true;
      });
    },
    /**
     * Sources still `pending` whose extraction job ended without finishing them (cancelled, or failed
     * where no handler ran: cancelled while waiting, stalled past its limit, refused at pick-up): each
     * message is recorded `failed` with the job's reason and the source `failed`, as a failed run
     * would have. Returns how many it settled. Idempotent; a job still queued or running is left alone.
     */
    async settleEnded(owner: string, ids?: readonly string[]): Promise<number> {
      const q = db<SourceRow>('knowledge_sources as s')
        .join('jobs as j', 'j.id', 's.job_id')
        .where('s.owner_id', owner)
        .andWhere('s.status', 'pending')
        .whereIn('j.state', ['failed', 'cancelled'])
        .select('s.id', 's.scope_key', 'j.state', 'j.error_code', 'j.error_message', db.raw(`j.input -> 'source' as source`));
      if (ids) q.whereIn('s.id', ids);
      const ended = (await q) as { id: string; scope_key: string; state: string; error_code: string | null; error_message: string | null; source: unknown }[];
      let settled = 0;
      for (const e of ended) {
        const reason = `the extraction job was ${e.state}${e.error_code ? ` (${e.error_code}${e.error_message ? `: ${e.error_message.slice(0, 200)}` : ''})` : ''}`;
        const source = e.source as { kind?: string; messages?: { id?: unknown }[] } | null;
        const messageIds = source?.kind === 'conversation' && Array.isArray(source.messages) ? source.messages.map((m) => String(m.id)) : [null];
        const outcomes = messageIds.map((messageId) => ({ messageId, outcome: 'failed' as const, items: 0, merged: 0, reason }));
        const done = await records.finishExtraction(
          e.id,
          owner,
          e.scope_key,
          { outcomes, refs: [], links: [], items: 0, status: 'failed', error: reason },
          { whilePending: true },
        );
        if (done) settled++;
      }
      return settled;
    },
    /** Marks a source as being forgotten: from now on it is not listed and its extraction cannot finish. */
    async markForgetting(id: string, owner: string): Promise<SourceRow | undefined> {
      const [r] = await sources().where({ id, owner_id: owner }).update({ status: 'forgetting', updated_at: db.fn.now() }).returning('*');
      return r;
    },
    /** Items whose only refs are this source's: what forgetting it deletes. */
    async itemsOnlyFrom(sourceId: string): Promise<{ item_id: string; scope_key: string }[]> {
      return db('knowledge_item_refs as r')
        .where('r.source_id', sourceId)
        .whereNotExists(db('knowledge_item_refs as o').whereRaw('o.item_id = r.item_id').andWhereRaw('o.source_id <> r.source_id'))
        .select('r.item_id', 'r.scope_key');
    },
    /** Older items that a set of items superseded (to restore when those go). */
    async supersededBy(owner: string, itemIds: readonly string[]): Promise<string[]> {
      if (!itemIds.length) return [];
      const rows = await db('knowledge_links').where({ owner_id: owner, type: 'supersedes' }).whereIn('from_id', itemIds).select('to_id');
      return [...new Set(rows.map((r: { to_id: string }) => r.to_id))];
    },
    /** Deletes the source (refs, outcomes and its links cascade) and every link touching the deleted items. */
    async removeSource(id: string, owner: string, deletedItems: readonly string[]): Promise<void> {
      await db.transaction(async (trx) => {
        for (let i = 0; i < deletedItems.length; i += 1000) {
          const slice = deletedItems.slice(i, i + 1000);
          await trx('knowledge_links')
            .where({ owner_id: owner })
            .andWhere((q) => q.whereIn('from_id', slice).orWhereIn('to_id', slice))
            .delete();
        }
        await trx('knowledge_sources').where({ id, owner_id: owner }).delete();
      });
    },
    /** The sources each item stands on (its refs), of this owner. */
    async sourcesOf(owner: string, itemIds: readonly string[]): Promise<Map<string, string[]>> {
      const out = new Map<string, string[]>();
      if (!itemIds.length) return out;
      const rows = await db('knowledge_item_refs')
        .where({ owner_id: owner })
        .whereIn('item_id', itemIds)
        .orderBy(['item_id', 'source_id'])
        .select('item_id', 'source_id');
      for (const r of rows as { item_id: string; source_id: string }[]) out.set(r.item_id, [...(out.get(r.item_id) ?? []), r.source_id]);
      return out;
    },
    /** Item-to-item links (of these types) touching any of the items, of this owner: one hop of the graph. */
    async itemLinksOf(owner: string, itemIds: readonly string[], types: readonly Link['type'][]): Promise<Link[]> {
      if (!itemIds.length || !types.length) return [];
      const rows = await db('knowledge_links')
        .where({ owner_id: owner, from_kind: 'item', to_kind: 'item' })
        .whereIn('type', types)
        .andWhere((q) => q.whereIn('from_id', itemIds).orWhereIn('to_id', itemIds))
        .orderBy('id')
        .limit(1000);
      return rows.map((r: { type: Link['type']; from_id: string; to_id: string; basis: string }) => ({
        type: r.type,
        from: { kind: 'item' as const, id: r.from_id },
        to: { kind: 'item' as const, id: r.to_id },
        basis: r.basis,
      }));
    },
    /** This owner's retention settings, one per scope that has any. */
    listRetention(owner: string): Promise<RetentionRow[]> {
      return db<RetentionRow>('knowledge_retention').where({ owner_id: owner }).orderBy('scope_key');
    },
    /** The settings of one scope of this owner; undefined: none, keep forever. */
    async retentionOf(owner: string, scopeKey: string): Promise<RetentionSettings | undefined> {
      const row = await db<RetentionRow>('knowledge_retention').where({ owner_id: owner, scope_key: scopeKey }).first();
      return row && { ttlSeconds: row.ttl_seconds, halfLifeSeconds: row.half_life_seconds };
    },
    async putRetention(row: Omit<RetentionRow, 'updated_at'>): Promise<RetentionRow> {
      const [r] = await db<RetentionRow>('knowledge_retention')
        .insert({ ...row, updated_at: db.fn.now() as unknown as Date })
        .onConflict(['owner_id', 'scope_key'])
        .merge(['ttl_seconds', 'half_life_seconds', 'updated_at'])
        .returning('*');
      return r!;
    },
    /** Every (owner, scope key) that has sources: where purging looks. */
    allScopes(): Promise<{ owner_id: string; scope_key: string }[]> {
      return sources().distinct('owner_id', 'scope_key');
    },
    /**
     * Items purged after their expiry: their refs, every link touching them, and the sources' item counts.
     * A source left with no items stays (its outcomes are its record).
     */
    async removeItems(owner: string, itemIds: readonly string[]): Promise<void> {
      if (!itemIds.length) return;
      await db.transaction(async (trx) => {
        for (let i = 0; i < itemIds.length; i += 1000) {
          const slice = itemIds.slice(i, i + 1000);
          // One statement for every source the slice's items stood on: its count drops by how many of them it had.
          await trx.raw(
            `update knowledge_sources s set items = greatest(0, s.items - c.n)
             from (select source_id, count(*)::int as n from knowledge_item_refs where owner_id = ? and item_id = any(?) group by source_id) c
             where s.id = c.source_id`,
            [owner, slice],
          );
          await trx('knowledge_item_refs').where({ owner_id: owner }).whereIn('item_id', slice).delete();
          await trx('knowledge_links')
            .where({ owner_id: owner })
            .andWhere((q) => q.whereIn('from_id', slice).orWhereIn('to_id', slice))
            .delete();
        }
      });
    },
    /** Links from or to an item, of this owner. */
    async linksOf(owner: string, itemId: string): Promise<Link[]> {
      const rows = await db('knowledge_links')
        .where({ owner_id: owner })
        .andWhere((q) => q.where({ from_id: itemId }).orWhere({ to_id: itemId }))
        .orderBy('id')
        .limit(1000);
      return rows.map(
        (r: { type: Link['type']; from_kind: Link['from']['kind']; from_id: string; to_kind: Link['to']['kind']; to_id: string; basis: string }) => ({
          type: r.type,
          from: { kind: r.from_kind, id: r.from_id },
          to: { kind: r.to_kind, id: r.to_id },
          basis: r.basis,
        }),
      );
    },
  };
  return records;
}

export type KnowledgeRecords = ReturnType<typeof createKnowledgeRecords>;
