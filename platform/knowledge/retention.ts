/**
 * Forgetting (issue 11): per-scope TTL, decay, pinning, soft expiry, purge.
 *
 * A scope's settings (knowledge_retention) give a TTL, counted from when an
 * item was recorded, and a decay half-life, counted from when a source last
 * said it (`confirmedAt`, else `recordedAt`). The decay score is
 * 0.5^(age / half-life); it scales the item's search score, and once it
 * falls below `DECAY_FLOOR` the item expires. Both become one instant per
 * item, `expiresAt`, the earlier of the two, stored with the item so every
 * read can prefilter on it in LanceDB: from then on the item is soft-expired
 * and never returned. It stays stored, and a pin still brings it back, until
 * `vectors.maintain` purges it after the grace (PARLEY_KNOWLEDGE_PURGE_GRACE_S).
 * A pinned item never expires and does not decay.
 */
import type { KnowledgeItem, RetentionSettings } from '../../shared/index.ts';

/** Below this decay score an item has faded: it expires. */
export const DECAY_FLOOR = 0.05;

const fadeHalfLives = Math.log2(1 / DECAY_FLOOR);

/** When the item expires under these settings (ISO), or null for never. */
export function expiryOf(item: Pick<KnowledgeItem, 'recordedAt' | 'confirmedAt' | 'pinned'>, settings: RetentionSettings | undefined): string | null {
  if (item.pinned || !settings) return null;
  const ends: number[] = [];
  if (settings.ttlSeconds !== null) ends.push(Date.parse(item.recordedAt) + settings.ttlSeconds * 1000);
  if (settings.halfLifeSeconds !== null) ends.push(Date.parse(item.confirmedAt ?? item.recordedAt) + settings.halfLifeSeconds * fadeHalfLives * 1000);
  return ends.length ? new Date(Math.min(...ends)).toISOString() : null;
}

/** The item under these settings: its half-life and expiry recomputed (pinning is the item's own). */
export function withRetention(item: KnowledgeItem, settings: RetentionSettings | undefined): KnowledgeItem {
  const halfLifeSeconds = item.pinned ? null : (settings?.halfLifeSeconds ?? null);
  return { ...item, halfLifeSeconds, expiresAt: expiryOf(item, settings) };
}

/** The decay score at `now`: 1 without a half-life or when pinned. */
export function decayOf(item: Pick<KnowledgeItem, 'recordedAt' | 'confirmedAt' | 'pinned' | 'halfLifeSeconds'>, now = Date.now()): number {
  if (item.pinned || item.halfLifeSeconds === null) return 1;
  const age = Math.max(0, now - Date.parse(item.confirmedAt ?? item.recordedAt)) / 1000;
  return 0.5 ** (age / item.halfLifeSeconds);
}
