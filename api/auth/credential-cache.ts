/**
 * What a session id resolves to in Postgres (the session row and its user),
 * memoised per process, so an authenticated request costs one Redis round
 * trip's latency instead of a Redis check plus two queries.
 *
 * The memo is only as good as the markers that invalidate it. Whoever changes
 * the state writes one to Redis, and every lookup reads both markers, sent
 * together, before trusting an entry:
 * - `revoked:session:<sid>`: the session was revoked (logout, reuse of a
 *   refresh token, account disabled). Checked on every request, as before.
 * - `user-epoch:<uid>`: bumped after a user's role or `disabled` flag
 *   changes. An entry remembers the epoch it was read under and is dropped
 *   when the epoch moved. The epoch is read *before* Postgres, so a change
 *   that lands between the two reads is caught by the next request.
 *
 * Every entry also expires after `maxAgeMs`: the bound on staleness if a
 * marker write is lost (Redis keeps AOF with `appendfsync everysec`). Session
 * expiry is checked against the cached `expires_at` at every use. `maxAgeMs`
 * 0 turns the memo off (every lookup reads Postgres).
 *
 * API keys use the same memo for the once-a-second recheck of long-lived
 * connections, keyed by key id, with `revoked:apikey:<id>` as their marker.
 *
 * The markers of concurrent lookups share round trips (platform/connections
 * sharedPipeline): the first goes out at once, and those that arrive while two
 * are in flight go out together in the next pipeline. Under load (many
 * submits, or thousands of sockets rechecking every second) that is one
 * round trip for many requests; an idle lookup waits for nothing.
 */
import type { Redis } from 'ioredis';
import { sharedPipeline } from '../../platform/connections/index.ts';

export interface SessionState {
  userId: string;
  scope: string | null;
  expiresAt: Date;
  revoked: boolean;
}

export interface UserState {
  id: string;
  username: string;
  role: string;
  disabled: boolean;
}

export interface Resolved<U extends UserState> {
  /** The revocation key exists: nothing else was read. */
  revoked: boolean;
  session?: SessionState;
  user?: U;
}

interface Entry<U> {
  at: number;
  epoch: string | null;
  session: SessionState | undefined;
  user: U | undefined;
}

export const revokedSessionKey = (prefix: string, sid: string) => `${prefix}:revoked:session:${sid}`;
export const revokedApiKeyKey = (prefix: string, keyId: string) => `${prefix}:revoked:apikey:${keyId}`;
export const userEpochKey = (prefix: string, uid: string) => `${prefix}:user-epoch:${uid}`;
/** Epoch keys outlive any cache entry by far; an expired epoch reads as null, which also invalidates. */
const EPOCH_TTL_S = 86_400;

export class CredentialCache<U extends UserState> {
  private readonly entries = new Map<string, Entry<U>>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly load: (sid: string, uid: string) => Promise<{ session?: SessionState; user?: U }>,
    private readonly opts: {
      maxAgeMs: number;
      maxEntries?: number;
      revokedKey?: (prefix: string, id: string) => string;
      /** The clock entries age by, in ms. @defaultValue Date.now */
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** The session `sid` as claimed for user `uid`: revocation from Redis, the rest from the memo or Postgres. */
  async resolve(sid: string, uid: string): Promise<Resolved<U>> {
    const revokedKey = (this.opts.revokedKey ?? revokedSessionKey)(this.prefix, sid);
    const [revoked, epoch] = await this.markers(revokedKey, userEpochKey(this.prefix, uid));
    if (revoked) {
      this.entries.delete(sid);
      return { revoked: true };
    }
    const hit = this.entries.get(sid);
    if (hit && hit.epoch === epoch && this.now() - hit.at < this.opts.maxAgeMs && hit.session?.userId === uid)
      return { revoked: false, session: hit.session, user: hit.user };
    const fresh = await this.load(sid, uid);
    if (this.opts.maxAgeMs > 0) this.remember(sid, { at: this.now(), epoch, session: fresh.session, user: fresh.user });
    return { revoked: false, ...fresh };
  }

  /**
   * Both markers in one round trip, shared with the lookups running at the same time: a pipeline on a
   * single Redis. On a Redis Cluster the two keys live in different slots (a pipeline there must stay in
   * one), so the two are sent at once instead.
   */
  private async markers(revokedKey: string, epochKey: string): Promise<[number, string | null]> {
    if (this.redis.isCluster) {
      return Promise.all([this.redis.exists(revokedKey), this.redis.get(epochKey)]);
    }
    const [[existsErr, exists], [epochErr, epoch]] = (await sharedPipeline(this.redis)([
      ['exists', revokedKey],
      ['get', epochKey],
    ])) as [[Error | null, number], [Error | null, string | null]];
    if (existsErr || epochErr) throw existsErr ?? epochErr;
    return [exists, epoch];
  }

  /** Call after changing a user's role or disabled flag (and after the Postgres commit). */
  async userChanged(uid: string): Promise<void> {
    await this.redis.pipeline().incr(userEpochKey(this.prefix, uid)).expire(userEpochKey(this.prefix, uid), EPOCH_TTL_S).exec();
    for (const [sid, e] of this.entries) if (e.user?.id === uid) this.entries.delete(sid);
  }

  /** Call after revoking a session (and after writing its Redis revocation key). */
  forget(sid: string): void {
    this.entries.delete(sid);
  }

  get size(): number {
    return this.entries.size;
  }

  private remember(sid: string, entry: Entry<U>): void {
    this.entries.delete(sid);
    this.entries.set(sid, entry);
    const max = this.opts.maxEntries ?? 10_000;
    // Map keeps insertion order: the first key is the least recently stored.
    while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
  }
}
