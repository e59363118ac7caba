/**
 * Watching a discussion room, for SSE and Socket.IO alike: checks the actor
 * may read the room, then relays its stream from `afterSeq`.
 *
 * A late joiner (afterSeq 0) replays the room stream from its first event:
 * while the room is young that is the whole transcript so far — copied
 * history of a fork included — followed by the turn in progress token by
 * token, then live events; one ordered sequence. A reconnecting viewer passes
 * the last seq it saw and gets exactly what follows.
 *
 * The stream keeps only its last PARLEY_ROOM_STREAM_MAXLEN entries or so. A
 * viewer asking for seqs already trimmed gets one `snapshot` first (seq: the
 * one before the oldest kept entry) with the committed turns and messages
 * that began before that entry, then the stream from there. A closed room
 * whose stream has expired is answered with the `snapshot` alone, which ends
 * an SSE stream; a snapshot of an open room does not.
 */
import type { Redis } from 'ioredis';
import type { DiscussionStore } from '../../platform/discussions/index.ts';
import { toMessage, toTurn, type Transcripts } from '../../platform/discussions/index.ts';
import type { Keys } from '../../platform/keys.ts';
import { isClosed, type RoomEvent } from '../../shared/index.ts';
import { can, type Actor } from '../auth/permissions.ts';
import { readableRoom } from '../domain/discussions.ts';
import { AppError } from '../domain/errors.ts';
import type { StreamHub } from '../../platform/streams/index.ts';

export interface RoomWatchDeps {
  rooms: DiscussionStore;
  transcripts: Transcripts;
  redis: Redis;
  keys: Keys;
  hub: StreamHub;
}

export async function watchDiscussion(deps: RoomWatchDeps, actor: Actor, id: string, afterSeq: number, fn: (e: RoomEvent) => void): Promise<() => void> {
  if (!can(actor, 'discussions:read')) throw new AppError('NOT_FOUND', { detail: 'No such discussion' });
  const row = await readableRoom(deps, actor, id);
  const key = deps.keys.roomStream(id);
  const [oldest] = (await deps.redis.xrange(key, '-', '+', 'COUNT', 1)) as [string, string[]][];
  const firstSeq = oldest ? Number(oldest[0].split('-')[1]) : undefined;
  const trimmed = firstSeq !== undefined && firstSeq > afterSeq + 1;
  if (isClosed(row.status) && (firstSeq === undefined || trimmed)) {
    // Expired, or trimmed past what the viewer has: the transcript is the whole story, and the last word.
    const [turns, messages] = await Promise.all([deps.transcripts.turns(id), deps.transcripts.messages(id)]);
    fn({
      event: 'snapshot',
      data: { seq: Math.max(afterSeq + 1, 1), attempt: 0, status: row.status, turns: turns.map((t) => toTurn(t)), messages: messages.map(toMessage) },
    });
    return () => {};
  }
  if (trimmed) {
    // An open room trimmed away: the transcript stands in for what is gone, up to the oldest entry still kept.
    const [turns, messages] = await Promise.all([deps.transcripts.turns(id), deps.transcripts.messages(id, { beforeSeq: firstSeq })]);
    fn({
      event: 'snapshot',
      data: {
        seq: firstSeq - 1,
        attempt: 0,
        status: row.status,
        turns: turns.filter((t) => t.startedSeq < firstSeq).map((t) => toTurn(t)),
        messages: messages.map(toMessage),
      },
    });
    return deps.hub.subscribe<RoomEvent>(key, firstSeq - 1, fn);
  }
  return deps.hub.subscribe<RoomEvent>(key, afterSeq, fn);
}

/** The `discussion` room kind for attachSocketServer's `rooms` hook: `subscribe { room: "discussion:<id>", lastSeq? }`. */
export function discussionRoomKind(deps: RoomWatchDeps) {
  return (actor: Actor, id: string, lastSeq: number, emit: (event: string, data: object) => void) =>
    watchDiscussion(deps, actor, id, lastSeq, (e) => emit(e.event, e.data));
}

/** SSE ends with the room: a `status` event that closes it, or a snapshot of a closed room. */
export function isLastRoomEvent(e: RoomEvent): boolean {
  return (e.event === 'snapshot' || e.event === 'status') && isClosed(e.data.status);
}
