/**
 * A discussion room's live events in a Redis Stream.
 *
 * Key: keys(prefix).roomStream(id). Same entry format as job streams (see
 * job-stream.ts): entry id `0-<seq>`, fields `e` (event name from
 * shared/discussions.ts `roomEvents`), `a` (the turn job's attempt; 0 for
 * events the API writes) and `d` (JSON of the payload without seq/attempt).
 *
 * Unlike a job stream, a room stream has several writers at once: the API
 * (human messages, status changes) and whichever worker runs the current
 * turn. So seq is allocated in Redis, atomically with the XADD, by one Lua
 * script per batch:
 *
 *   KEYS[1]  the room stream
 *   KEYS[2]  the room's seq counter (keys(prefix).roomSeq(id))
 *   ARGV[1]  attempt, written as field `a` of every entry
 *   ARGV[2]  the stream's length bound (XADD MAXLEN ~)
 *   ARGV[3..] pairs: event name, JSON payload
 *   returns  the seq of the first entry appended
 * and, like a job stream writer, PUBLISHes the appended entries on the
 * stream key's channel for live relay (format: job-stream.ts `parseLiveMessage`).
 *
 * If the counter is missing while the stream exists (the counter was lost),
 * it is re-seeded from the stream's last id first, so seq never goes back.
 * Seqs are therefore strictly increasing and gap-free whoever writes, and
 * `XRANGE key (0-<lastSeq> +` resumes a client exactly.
 *
 * Retention: a room's stream keeps about its last PARLEY_ROOM_STREAM_MAXLEN
 * entries (XADD MAXLEN ~, trimmed as it grows, open or not), so no room can
 * fill Redis; human messages per room are bounded too (api/domain/
 * discussions.ts). A late joiner replays what is kept; one that asks for
 * seqs already trimmed gets a `snapshot` built from the transcript first
 * (api/realtime/discussion-watch.ts). When the room closes (finished,
 * stopped) stream, counter and message count get the stream TTL; after that
 * a joiner gets only the `snapshot`.
 */
import type { Redis } from 'ioredis';
import type { RoomEventName, RoomEventPayload } from '../../shared/index.ts';
import { BatchingStreamWriter, parseStreamEntry, type PendingEntry } from './job-stream.ts';
import type { Keys } from '../keys.ts';
import { luaScript } from '../connections/index.ts';

/** The default of PARLEY_ROOM_STREAM_MAXLEN. */
export const ROOM_STREAM_MAXLEN = 5000;

const appendScript = `
local n = (#ARGV - 2) / 2
if redis.call('EXISTS', KEYS[2]) == 0 then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then
    local id = last[1][1]
    redis.call('SET', KEYS[2], string.sub(id, string.find(id, '-') + 1))
  end
end
local top = redis.call('INCRBY', KEYS[2], n)
local first = top - n + 1
local live = {}
for i = 0, n - 1 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. (first + i), 'e', ARGV[3 + 2 * i], 'a', ARGV[1], 'd', ARGV[4 + 2 * i])
  live[i + 1] = { first + i, ARGV[3 + 2 * i], ARGV[1], ARGV[4 + 2 * i] }
end
redis.call('PUBLISH', KEYS[1], cjson.encode(live))
return first
`;
const append = luaScript(appendScript);

/** Appends events to a room stream in one atomic step, trimming it to about `maxLen` entries; returns the seq of each, in order. */
export async function appendRoomEvents(
  redis: Redis,
  k: Keys,
  roomId: string,
  attempt: number,
  events: PendingEntry[],
  maxLen = ROOM_STREAM_MAXLEN,
): Promise<number[]> {
  if (events.length === 0) return [];
  const first = Number(
    await append.run(redis, [k.roomStream(roomId), k.roomSeq(roomId)], [String(attempt), String(maxLen), ...events.flatMap((e) => [e.e, JSON.stringify(e.d)])]),
  );
  return events.map((_, i) => first + i);
}

/** Appends one event and returns its seq. */
export async function appendRoomEvent<K extends RoomEventName>(
  redis: Redis,
  k: Keys,
  roomId: string,
  attempt: number,
  event: K,
  payload: RoomEventPayload<K>,
  maxLen = ROOM_STREAM_MAXLEN,
): Promise<number> {
  const [seq] = await appendRoomEvents(redis, k, roomId, attempt, [{ e: event, d: payload as Record<string, unknown> }], maxLen);
  return seq!;
}

/** A closed room's stream (and counter) expire after `ttlSeconds`; the transcript stays in MongoDB. */
export async function expireRoomStream(redis: Redis, k: Keys, roomId: string, ttlSeconds: number): Promise<void> {
  await redis.multi().expire(k.roomStream(roomId), ttlSeconds).expire(k.roomSeq(roomId), ttlSeconds).expire(k.roomMessageCount(roomId), ttlSeconds).exec();
}

/**
 * The writer one turn uses: token text batches while a write is in flight
 * (as job streams do) and is tagged with the turn and the speaker.
 */
export class RoomStreamWriter extends BatchingStreamWriter {
  constructor(
    private readonly redis: Redis,
    private readonly k: Keys,
    private readonly roomId: string,
    readonly attempt: number,
    private readonly maxLen = ROOM_STREAM_MAXLEN,
  ) {
    super();
  }

  tokens(turn: number, agentId: string, text: string): void {
    this.enqueueText('tokens' satisfies RoomEventName, text, { turn, agentId });
  }

  /** Writes an event after everything queued before it and returns its seq. */
  async emit<K extends RoomEventName>(event: K, payload: RoomEventPayload<K>): Promise<number> {
    await this.flush();
    return appendRoomEvent(this.redis, this.k, this.roomId, this.attempt, event, payload, this.maxLen);
  }

  protected async write(batch: PendingEntry[]): Promise<void> {
    await appendRoomEvents(this.redis, this.k, this.roomId, this.attempt, batch, this.maxLen);
  }
}

/**
 * The room's human messages with fromSeq ≤ seq < beforeSeq, read from the
 * stream itself. The stream is where a message's seq is allocated, in the same
 * step as its entry, so this view has no window in which a message holds a
 * seq but is not yet visible (its MongoDB document is written just after).
 */
export async function readRoomMessages(
  redis: Redis,
  k: Keys,
  roomId: string,
  fromSeq: number,
  beforeSeq: number,
): Promise<{ id: string; seq: number; authorId: string; authorName: string; text: string }[]> {
  if (beforeSeq <= fromSeq) return [];
  const entries = (await redis.xrange(k.roomStream(roomId), `0-${fromSeq}`, `(0-${beforeSeq}`)) as [string, string[]][];
  const out: { id: string; seq: number; authorId: string; authorName: string; text: string }[] = [];
  for (const [id, fields] of entries) {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    if (f.e !== 'human_message' || !f.d) continue;
    const d = JSON.parse(f.d) as { id: string; authorId: string; authorName: string; text: string };
    out.push({ id: d.id, authorId: d.authorId, authorName: d.authorName, text: d.text, seq: Number(id.split('-')[1]) });
  }
  return out;
}

/**
 * Where a room's stream stands, in one atomic read (stream and counter share a slot): the oldest kept
 * seq, the last seq allocated (0 for none), and the seq of the closing `status` when that is the last entry.
 */
export async function roomStreamHead(
  redis: Redis,
  k: Keys,
  roomId: string,
): Promise<{ firstSeq: number | undefined; lastSeq: number; closingSeq: number | undefined }> {
  const key = k.roomStream(roomId);
  const replies = await redis.multi().xrange(key, '-', '+', 'COUNT', 1).get(k.roomSeq(roomId)).xrevrange(key, '+', '-', 'COUNT', 1).exec();
  if (!replies) throw new Error('the room stream read was aborted');
  for (const [err] of replies) if (err) throw err;
  const [oldest] = replies[0]![1] as [string, string[]][];
  const counter = replies[1]![1] as string | null;
  const [newest] = replies[2]![1] as [string, string[]][];
  const entry = newest ? parseStreamEntry(...newest) : undefined;
  return {
    firstSeq: oldest ? Number(oldest[0].split('-')[1]) : undefined,
    // The counter allocates seqs with the XADDs, so it is never below the last id; without it, the stream says.
    lastSeq: counter !== null ? Number(counter) : (entry?.data.seq ?? 0),
    closingSeq: entry?.event === 'status' && (entry.data.status === 'finished' || entry.data.status === 'stopped') ? entry.data.seq : undefined,
  };
}

/**
 * The seq of turn `turn`'s first `turn_started` from `fromSeq` on; undefined
 * when none is kept. This is where the turn began even while it is still
 * speaking: its transcript document (and its `startedSeq`) is written only
 * when it commits.
 */
export async function turnStartedSeq(redis: Redis, k: Keys, roomId: string, turn: number, fromSeq: number): Promise<number | undefined> {
  const key = k.roomStream(roomId);
  let from = `0-${fromSeq}`;
  for (;;) {
    const page = (await redis.xrange(key, from, '+', 'COUNT', 256)) as [string, string[]][];
    for (const raw of page) {
      const entry = parseStreamEntry(...raw);
      if (entry?.event === 'turn_started' && entry.data.turn === turn) return entry.data.seq;
    }
    if (page.length < 256) return undefined;
    from = `(${page.at(-1)![0]}`;
  }
}

/**
 * The seq of the last kept entry of turn `turn` (its tokens, its
 * `turn_finished`) from `fromSeq` on, until another turn starts; undefined
 * when none is kept. A snapshot that holds the turn whole resumes the stream
 * after it, so none of the turn's text comes twice.
 */
export async function lastKeptSeqOfTurn(redis: Redis, k: Keys, roomId: string, turn: number, fromSeq: number): Promise<number | undefined> {
  const key = k.roomStream(roomId);
  let from = `0-${fromSeq}`;
  let last: number | undefined;
  for (;;) {
    const page = (await redis.xrange(key, from, '+', 'COUNT', 256)) as [string, string[]][];
    for (const raw of page) {
      const entry = parseStreamEntry(...raw);
      if (!entry) continue;
      const { event, data } = entry;
      if (event === 'turn_started' && data.turn !== turn) return last;
      if (data.turn === turn && (event === 'tokens' || event === 'turn_finished')) last = data.seq;
      if (event === 'turn_finished' && data.turn === turn) return last;
    }
    if (page.length < 256) return last;
    from = `(${page.at(-1)![0]}`;
  }
}
