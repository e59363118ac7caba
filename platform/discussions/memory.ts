/**
 * Short-term memory: the recent turns of a room in a capped Redis list, so
 * the next prompt is built without a MongoDB round trip.
 *
 * Key keys(prefix).roomMemory(id): a list, newest first, of JSON
 * `MemoryTurn`s; LTRIM keeps `size` entries; the key expires `ttlSeconds`
 * after the last push. A turn written twice (a retry after a crash) appears
 * twice: readers keep the newest per turn. MongoDB stays the record: when
 * the list does not cover the turns a prompt needs (expired, trimmed, a
 * fresh fork), the caller reads them from the transcript instead.
 */
import type { Redis } from 'ioredis';
import type { TurnStatus } from '../../shared/index.ts';
import type { Keys } from '../keys.ts';

export interface MemoryTurn {
  turn: number;
  /** The room seq of the turn's `turn_started`. */
  seq: number;
  agentId: string;
  agentName: string;
  text: string;
  status: TurnStatus;
}

export interface RoomMemoryOptions {
  /** Turns kept per room. @defaultValue 24: more than any default context budget holds verbatim. */
  size?: number;
  /** @defaultValue 7 days: a paused room resumes from memory for a week, from MongoDB after. */
  ttlSeconds?: number;
}

export function createRoomMemory(redis: Redis, k: Keys, opts: RoomMemoryOptions = {}) {
  const size = opts.size ?? 24;
  const ttl = opts.ttlSeconds ?? 7 * 86_400;
  return {
    size,
    async push(roomId: string, t: MemoryTurn): Promise<void> {
      const key = k.roomMemory(roomId);
      await redis
        .multi()
        .lpush(key, JSON.stringify(t))
        .ltrim(key, 0, size - 1)
        .expire(key, ttl)
        .exec();
    },
    /** The remembered turns, oldest first, one per turn number. */
    async recent(roomId: string): Promise<MemoryTurn[]> {
      const raw = await redis.lrange(k.roomMemory(roomId), 0, -1);
      const byTurn = new Map<number, MemoryTurn>();
      for (const r of raw) {
        const t = JSON.parse(r) as MemoryTurn;
        if (!byTurn.has(t.turn)) byTurn.set(t.turn, t);
      }
      return [...byTurn.values()].sort((a, b) => a.turn - b.turn);
    },
  };
}

export type RoomMemory = ReturnType<typeof createRoomMemory>;
