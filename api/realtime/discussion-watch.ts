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
 * The end: a closed room's last word is the `status` that closed it; its seq
 * is kept on the room row (`closed_seq`). A viewer at or after it gets `null`
 * (SSE 204, Socket.IO `{ ok: true, ended: true }`), as a job's does after
 * `finished`: nothing more will ever come. A seq beyond the room's last is
 * read as that last seq, as a job's is (watch.ts) — the stream stays open —
 * and relays what the room says next (a seq never issued cannot have been
 * seen; skipping up to it could swallow the `status` that closes the room).
 * That holds for a room whose row is closed but whose closing `status` is
 * not written yet (a stop waits for the speaker's partial turn first). The
 * row goes closed before its `status` is appended, so a room read as open
 * whose stream already ends with the closing `status` is answered as closed.
 *
 * The stream keeps only its last PARLEY_ROOM_STREAM_MAXLEN entries or so. A
 * viewer asking for seqs already trimmed gets one `snapshot` first, then the
 * stream after the snapshot's seq, which repeats nothing the snapshot holds:
 * the snapshot holds the committed turns that began before the oldest kept
 * entry — whole, even when the end of one of them is still kept — and the
 * messages up to its seq; its seq is the one before the oldest kept entry or,
 * when the kept entries begin inside a committed turn, that turn's last kept
 * entry. (A turn still being spoken whose start was trimmed is not in the
 * transcript yet: its kept tokens follow the snapshot, without their
 * `turn_started`.) A closed room trimmed past the viewer, or whose stream has
 * expired, is answered with the `snapshot` alone, whole, at the seq of its
 * closing `status`: that ends an SSE stream, and resuming from it is 204. A
 * snapshot of an open room does not end the stream.
 */
import type { Redis } from 'ioredis';
import type { DiscussionStore } from '../../platform/discussions/index.ts';
import { toMessage, toTurn, type Transcripts } from '../../platform/discussions/index.ts';
import type { Keys } from '../../platform/keys.ts';
import { lastKeptSeqOfTurn, readRoomMessages, roomStreamHead } from '../../platform/streams/index.ts';
import { isClosed, type HumanMessage, type RoomEvent, type RoomStatus } from '../../shared/index.ts';
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

/** Relays the room's events after `afterSeq` to `fn`; null when the room is closed and nothing after `afterSeq` remains. */
export async function watchDiscussion(
  deps: RoomWatchDeps,
  actor: Actor,
  id: string,
  afterSeq: number,
  fn: (e: RoomEvent) => void,
): Promise<(() => void) | null> {
  if (!can(actor, 'discussions:read')) throw new AppError('NOT_FOUND', { detail: 'No such discussion' });
  const row = await readableRoom(deps, actor, id);
  const key = deps.keys.roomStream(id);
  // Read after the row, in one step: a `status` that closed the room since is seen here.
  const head = await roomStreamHead(deps.redis, deps.keys, id);
  const firstSeq = head.firstSeq;
  const trimmed = firstSeq !== undefined && firstSeq > afterSeq + 1;
  // A seq the room has not reached yet: relay from its last one (what comes next).
  const from = Math.min(afterSeq, head.lastSeq);
  if (isClosed(row.status)) {
    // Rooms closed before the row kept it: the stream's last entry, while it is kept.
    const closedSeq = row.closed_seq ?? head.closingSeq;
    if (closedSeq !== undefined && afterSeq >= closedSeq) return null;
    if (firstSeq === undefined || trimmed) {
      // Expired, or trimmed past what the viewer has: the transcript is the whole story, and the last word.
      // (A room closed before its closing seq was kept, whose stream expired: a viewer that saw any seq is done.)
      if (closedSeq === undefined && afterSeq > 0) return null;
      const [turns, messages] = await Promise.all([deps.transcripts.turns(id), deps.transcripts.messages(id)]);
      fn({
        event: 'snapshot',
        data: { seq: closedSeq ?? 1, attempt: 0, status: row.status, turns: turns.map((t) => toTurn(t)), messages: messages.map(toMessage) },
      });
      return () => {};
    }
    return deps.hub.subscribe<RoomEvent>(key, from, fn);
  }
  // Closed since the row was read: its closing `status` is the stream's last word.
  if (head.closingSeq !== undefined && afterSeq >= head.closingSeq) return null;
  if (trimmed) return snapshotThenStream(deps, id, row.status, firstSeq, fn);
  return deps.hub.subscribe<RoomEvent>(key, from, fn);
}

/** An open room trimmed away: the transcript stands in for what is gone, and the stream resumes after what the snapshot holds. */
async function snapshotThenStream(deps: RoomWatchDeps, id: string, status: RoomStatus, firstSeq: number, fn: (e: RoomEvent) => void): Promise<() => void> {
  const allTurns = await deps.transcripts.turns(id);
  const turns = allTurns.filter((t) => t.startedSeq < firstSeq);
  // The kept entries may begin inside the last of those turns: its tail is in the snapshot already, so the stream resumes after it.
  const straddling = turns.reduce<(typeof turns)[number] | undefined>((a, t) => (a && a.startedSeq > t.startedSeq ? a : t), undefined);
  const tailEnd = straddling ? await lastKeptSeqOfTurn(deps.redis, deps.keys, id, straddling.turn, firstSeq) : undefined;
  const seq = tailEnd ?? firstSeq - 1;
  const stored = (await deps.transcripts.messages(id, { beforeSeq: seq + 1 })).map(toMessage);
  // A message posted during that tail whose document is not written yet (it follows its stream entry): from the stream itself.
  const known = new Set(stored.map((m) => m.id));
  const pending: HumanMessage[] =
    tailEnd === undefined
      ? []
      : (await readRoomMessages(deps.redis, deps.keys, id, firstSeq, seq + 1))
          .filter((m) => !known.has(m.id))
          .map((m) => ({ ...m, discussionId: id, createdAt: new Date().toISOString() }));
  const messages = [...stored, ...pending].sort((a, b) => a.seq - b.seq);
  fn({
    event: 'snapshot',
    data: { seq, attempt: 0, status, turns: turns.map((t) => toTurn(t)), messages },
  });
  return deps.hub.subscribe<RoomEvent>(deps.keys.roomStream(id), seq, fn);
}

/** The `discussion` room kind for attachSocketServer's `rooms` hook: `subscribe { room: "discussion:<id>", lastSeq? }`. */
export function discussionRoomKind(deps: RoomWatchDeps) {
  return (actor: Actor, id: string, lastSeq: number, emit: (event: string, data: object) => void): Promise<(() => void) | null> =>
    watchDiscussion(deps, actor, id, lastSeq, (e) => emit(e.event, e.data));
}

/** SSE ends with the room: a `status` event that closes it, or a snapshot of a closed room. */
export function isLastRoomEvent(e: RoomEvent): boolean {
  return (e.event === 'snapshot' || e.event === 'status') && isClosed(e.data.status);
}
