/**
 * The purge of soft-expired knowledge (retention.ts says what expiry is), run
 * by `vectors.maintain`.
 */
import type { KnowledgeStore } from './lance-index.ts';
import type { KnowledgeRecords } from './records.ts';

/**
 * Purges items that expired before `before` (now less the grace), tenant by
 * tenant through each one's scoped repository: their rows, refs and every
 * link touching them; then maintains the knowledge table (compaction,
 * indexes, old versions). Run by `vectors.maintain`.
 */
export async function purgeExpiredKnowledge(
  deps: { knowledge: KnowledgeStore; records: KnowledgeRecords },
  before: number,
  signal?: AbortSignal,
): Promise<{ purged: number; table: string | null }> {
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
  const { table } = await deps.knowledge.open(signal);
  await table.maintain({ settle: true, ...(signal ? { signal } : {}) });
  return { purged, table: table.name };
}
