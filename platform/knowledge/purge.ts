/**
 * The purge of soft-expired knowledge (retention.ts says what expiry is), run
 * by `vectors.maintain`.
 */
import type { VectorTable } from '../vectors/index.ts';
import type { KnowledgeStore } from './lance-index.ts';
import type { KnowledgeRecords } from './records.ts';

/**
 * Purges items that expired before `before` (now less the grace), tenant by
 * tenant through each one's scoped repository: their rows, refs and every
 * link touching them. Answers the knowledge table, for the maintenance that
 * follows (compaction, indexes, old versions), or null while no source exists.
 */
export async function purgeExpiredKnowledge(
  deps: { knowledge: KnowledgeStore; records: KnowledgeRecords },
  before: number,
  signal?: AbortSignal,
): Promise<{ purged: number; table: VectorTable | null }> {
  const byOwner = new Map<string, string[]>();
  for (const r of await deps.records.allScopes()) byOwner.set(r.owner_id, [...(byOwner.get(r.owner_id) ?? []), r.scope_key]);
  let purged = 0;
  for (const [owner, scopes] of byOwner) {
    if (signal?.aborted) throw signal.reason;
    const repo = deps.knowledge.forTenant(owner);
    const ids = await repo.expiredBefore(scopes, before);
    if (!ids.length) continue;
    await repo.delete(scopes, ids);
    await deps.records.removeItems(owner, ids);
    purged += ids.length;
  }
  if (!byOwner.size) return { purged, table: null };
  return { purged, table: (await deps.knowledge.open(signal)).serving.table };
}
