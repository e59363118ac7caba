/**
 * Knowledge use cases (issue 11): sources in, their extraction as a
 * `knowledge.extract` job, search, links, and forgetting. The caller is the
 * tenant: every read and write goes through `KnowledgeStore.forTenant(actor)`
 * (platform/knowledge/lance-index.ts), which ANDs the tenant and the scope
 * keys into every LanceDB prefilter, and every record query names the owner.
 * Someone else's source or item is NOT_FOUND, never forbidden.
 */
import { randomUUID } from 'node:crypto';
import { submitJob, type SubmitDeps } from '../../platform/code/index.ts';
import {
  believedAt,
  scopeKey,
  supersededChains,
  withRetention,
  type KnowledgeRecords,
  type KnowledgeStore,
  type RetentionRow,
  type SourceRow,
} from '../../platform/knowledge/index.ts';
import {
  knowledgeExtract,
  type CreateKnowledgeSource,
  type KnowledgeLinks,
  type KnowledgeRelated,
  type KnowledgeSearchQuery,
  type KnowledgeSearchResults,
  type KnowledgeSourceAccepted,
  type KnowledgeSourceList,
  type KnowledgeSourceView,
  type KnowledgeItem,
  type PutRetention,
  type RetentionList,
  type RetentionView,
  type ScopeRef,
} from '../../shared/index.ts';
import type { Budgets } from '../../platform/usage/index.ts';
import type { Actor } from '../auth/permissions.ts';
import { reserveLlmPass } from './admission.ts';
import { AppError } from './errors.ts';
import { links, refusal } from './jobs.ts';

export interface KnowledgeDeps {
  records: KnowledgeRecords;
  knowledge: KnowledgeStore;
  submit: SubmitDeps;
  /**
   * The optional LLM pass spends the source owner's token budget: its estimate is reserved when the
   * source is added (429 BUDGET_EXHAUSTED when the budget cannot hold it), and the job's terminal write
   * settles it against what the pass spent. `maxTokens`: the longest answer a call may take.
   */
  llmPass?: { budgets: Pick<Budgets, 'reserve' | 'release'>; maxTokens: number };
}

function toView(row: SourceRow): KnowledgeSourceView {
  return {
    id: row.id,
    kind: row.kind,
    title: row.title,
    scope: row.scope,
    room: row.room,
    messages: row.messages,
    status: row.status === 'forgetting' ? 'failed' : row.status,
    items: row.items,
    error: row.error,
    job: row.job_id,
    createdAt: row.created_at.toISOString(),
  };
}

/** The scope keys of the caller's own knowledge that a query names: all of them, or one scope (a room's). */
async function scopesOf(deps: KnowledgeDeps, actor: Actor, q: { scope?: ScopeRef['scope']; room?: string }): Promise<string[]> {
  const own = scopeKey({ scope: 'private', owner: actor.userId, room: null });
  if (q.scope === 'private') return [own];
  if (q.scope === 'shared') return ['shared'];
  if (q.scope === 'room') {
    if (q.room) return [scopeKey({ scope: 'room', owner: actor.userId, room: q.room })];
    return deps.records.roomScopes(actor.userId);
  }
  return [own, 'shared', ...(await deps.records.roomScopes(actor.userId))];
}

/** Records the source and submits its extraction (202: the items arrive when the job completes). */
export async function addSource(deps: KnowledgeDeps, actor: Actor, body: CreateKnowledgeSource): Promise<KnowledgeSourceAccepted> {
  const scope: ScopeRef = { scope: body.scope.scope, owner: actor.userId, room: body.scope.room ?? null };
  const id = randomUUID();
  const jobId = randomUUID();
  // The pass's tokens are reserved before anything is recorded: a refusal leaves nothing behind.
  const reserved = body.llmPass && deps.llmPass ? deps.llmPass : undefined;
  if (reserved) await reserveLlmPass(reserved.budgets, { id: actor.userId, role: actor.role }, jobId, body.source, reserved.maxTokens);
  let row: SourceRow;
  try {
    row = await deps.records.insertSource({
      id,
      owner_id: actor.userId,
      kind: body.source.kind,
      title: body.source.title,
      scope: scope.scope,
      scope_owner: scope.owner,
      room: scope.room,
      scope_key: scopeKey(scope),
      messages: body.source.kind === 'conversation' ? body.source.messages.length : 1,
    });
  } catch (err) {
    await reserved?.budgets.release(jobId).catch(() => {});
    throw err;
  }
  let job;
  try {
    job = await submitJob(
      deps.submit,
      knowledgeExtract,
      { sourceId: id, source: body.source, scope, llmPass: body.llmPass },
      { ownerId: actor.userId, id: jobId },
    );
  } catch (err) {
    await reserved?.budgets.release(jobId).catch(() => {});
    await deps.records.removeSource(id, actor.userId, []).catch(() => {});
    throw refusal(err, 'The queue could not take the extraction; nothing was accepted. Retry later.');
  }
  await deps.records.setJob(id, job.id);
  return { source: toView({ ...row, job_id: job.id }), job: { id: job.id, kind: job.kind, state: 'queued', links: links(job.id) } };
}

export async function listSources(deps: KnowledgeDeps, actor: Actor): Promise<KnowledgeSourceList> {
  // A source whose job ended without finishing it is recorded failed before anyone sees it pending for good.
  await deps.records.settleEnded(actor.userId);
  return { items: (await deps.records.listSources(actor.userId, 500)).map(toView) };
}

async function ownSource(deps: KnowledgeDeps, actor: Actor, id: string): Promise<SourceRow> {
  await deps.records.settleEnded(actor.userId, [id]);
  const row = await deps.records.getSource(id, actor.userId);
  if (!row || row.status === 'forgetting') throw new AppError('NOT_FOUND', { detail: 'No such source' });
  return row;
}

export async function getSource(deps: KnowledgeDeps, actor: Actor, id: string): Promise<KnowledgeSourceView> {
  const row = await ownSource(deps, actor, id);
  const outcomes = await deps.records.outcomes(row.id);
  return {
    ...toView(row),
    outcomes: outcomes.map((o) => ({
      messageId: o.message_id,
      outcome: o.outcome,
      items: o.items,
      merged: o.merged,
      ...(o.reason === null ? {} : { reason: o.reason }),
    })),
  };
}

/**
 * Forgets a source and everything derived only from it: items no other
 * source stands on are deleted from LanceDB, with every link touching them;
 * items it superseded that are still stored are current again. Items another
 * source also stands on stay (that source still says them). The source is
 * marked first, so it disappears from lists at once and an extraction still
 * running cannot finish into it; a forget interrupted half way can be repeated.
 */
export async function forgetSource(deps: KnowledgeDeps, actor: Actor, id: string): Promise<void> {
  const found = await deps.records.getSource(id, actor.userId);
  if (!found) throw new AppError('NOT_FOUND', { detail: 'No such source' });
  const row = (await deps.records.markForgetting(id, actor.userId)) ?? found;
  const repo = deps.knowledge.forTenant(actor.userId);
  const only = await deps.records.itemsOnlyFrom(row.id);
  const ids = only.map((r) => r.item_id);
  const restore = (await deps.records.supersededBy(actor.userId, ids)).filter((x) => !ids.includes(x));
  const older = await repo.get([row.scope_key], restore);
  await repo.rewrite(older.map((i) => ({ ...i, supersededAt: null, validTo: null })));
  await repo.delete([row.scope_key], ids);
  await deps.records.removeSource(row.id, actor.userId, ids);
}

/** An item of the caller's, with the links from and to it. */
export async function itemLinks(deps: KnowledgeDeps, actor: Actor, id: string): Promise<KnowledgeLinks> {
  const scopes = await scopesOf(deps, actor, {});
  const [item] = await deps.knowledge.forTenant(actor.userId).get(scopes, [id]);
  if (!item) throw new AppError('NOT_FOUND', { detail: 'No such item' });
  return { item, links: await deps.records.linksOf(actor.userId, id) };
}

export async function searchKnowledge(deps: KnowledgeDeps, actor: Actor, q: KnowledgeSearchQuery): Promise<KnowledgeSearchResults> {
  const asOf = q.asOf ?? new Date().toISOString();
  const scopes = await scopesOf(deps, actor, { ...(q.scope ? { scope: q.scope } : {}), ...(q.room ? { room: q.room } : {}) });
  const repo = deps.knowledge.forTenant(actor.userId);
  const hits = await repo.search({ scopes, text: q.q, asOf, limit: q.limit });
  const ids = hits.map((h) => h.item.id);
  const [sources, history] = await Promise.all([
    deps.records.sourcesOf(actor.userId, ids),
    supersededChains({ records: deps.records, repo }, actor.userId, scopes, ids),
  ]);
  // One hop: items a hit supports, rebuts or supersedes, and those that do so to a hit; read through the same
  // scoped repository (so only what the caller may see), and only those believed at `asOf`.
  const hitIds = new Set(ids);
  const links = await deps.records.itemLinksOf(actor.userId, ids, ['supports', 'rebuts', 'supersedes']);
  const via = new Map<string, KnowledgeRelated['via']>();
  for (const l of links) {
    if (hitIds.has(l.from.id) && !hitIds.has(l.to.id) && !via.has(l.to.id)) via.set(l.to.id, { type: l.type, hit: l.from.id, direction: 'out' });
    if (hitIds.has(l.to.id) && !hitIds.has(l.from.id) && !via.has(l.from.id)) via.set(l.from.id, { type: l.type, hit: l.to.id, direction: 'in' });
  }
  const rank = new Map(ids.map((id, i) => [id, i]));
  const neighbours = (await repo.get(scopes, [...via.keys()]))
    .filter((i) => believedAt(i, asOf))
    .sort((a, b) => rank.get(via.get(a.id)!.hit)! - rank.get(via.get(b.id)!.hit)! || a.id.localeCompare(b.id));
  const related = neighbours.slice(0, q.limit).map((item) => ({ item, via: via.get(item.id)!, provenance: item.provenance }));
  return {
    asOf,
    items: hits.map((h) => ({
      item: h.item,
      score: h.score,
      decay: h.decay,
      ranks: h.ranks,
      provenance: h.item.provenance,
      sources: sources.get(h.item.id) ?? [],
      history: history.get(h.item.id) ?? [],
    })),
    related,
  };
}

function retentionView(row: RetentionRow, itemsUpdated?: number): RetentionView {
  return {
    scope: row.scope,
    room: row.room,
    ttlSeconds: row.ttl_seconds,
    halfLifeSeconds: row.half_life_seconds,
    updatedAt: row.updated_at.toISOString(),
    ...(itemsUpdated === undefined ? {} : { itemsUpdated }),
  };
}

export async function listRetention(deps: KnowledgeDeps, actor: Actor): Promise<RetentionList> {
  return { items: (await deps.records.listRetention(actor.userId)).map((r) => retentionView(r)) };
}

/**
 * Sets a scope's TTL and decay, for the items it will get and for those it
 * has: their expiry is recomputed from when each was recorded (TTL) and last
 * said (decay), so a shorter TTL can soft-expire items at once, and a longer
 * one (or null) brings back soft-expired items not yet purged.
 */
export async function putRetention(deps: KnowledgeDeps, actor: Actor, body: PutRetention): Promise<RetentionView> {
  const ref: ScopeRef = { scope: body.scope, owner: actor.userId, room: body.scope === 'room' ? body.room : null };
  const key = scopeKey(ref);
  const row = await deps.records.putRetention({
    owner_id: actor.userId,
    scope_key: key,
    scope: body.scope,
    room: ref.room,
    ttl_seconds: body.ttlSeconds,
    half_life_seconds: body.halfLifeSeconds,
  });
  const repo = deps.knowledge.forTenant(actor.userId);
  const settings = { ttlSeconds: row.ttl_seconds, halfLifeSeconds: row.half_life_seconds };
  const items = await repo.all([key]);
  const changed = items
    .map((i) => withRetention(i, settings))
    .filter((i, n) => i.expiresAt !== items[n]!.expiresAt || i.halfLifeSeconds !== items[n]!.halfLifeSeconds);
  await repo.rewrite(changed);
  return retentionView(row, changed.length);
}

/** Pins or unpins an item of the caller's: pinned, it never expires and does not decay; a soft-expired item not yet purged comes back. */
export async function pinItem(deps: KnowledgeDeps, actor: Actor, id: string, pinned: boolean): Promise<KnowledgeItem> {
  const scopes = await scopesOf(deps, actor, {});
  const repo = deps.knowledge.forTenant(actor.userId);
  const [item] = await repo.get(scopes, [id], { includeExpired: pinned });
  if (!item) throw new AppError('NOT_FOUND', { detail: 'No such item' });
  const next = withRetention({ ...item, pinned }, await deps.records.retentionOf(actor.userId, scopeKey(item)));
  await repo.rewrite([next]);
  return next;
}
