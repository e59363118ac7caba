/**
 * A job's live events in a Redis Stream, written by the attempt that owns the job.
 *
 * Key: keys(prefix).jobStream(id). Entry id: `0-<seq>`, where seq is the
 * per-job event sequence (1, 2, 3, ...), so `XRANGE key (0-<lastSeq> +`
 * returns exactly what a reconnecting client has not seen. Fields:
 *   e  event name: tokens | progress | reset | finished
 *   a  attempt number of the execution that wrote it
 *   d  JSON of the event's remaining payload (tokens: {text}; progress:
 *      {progress}; reset: {}; finished: {state, result?, error?, usage?})
 *
 * Fencing. Beside the stream, a small hash (keys(prefix).jobStreamState(id))
 * holds `a`, the highest attempt that has claimed the job, `s`, the last seq
 * allocated, `f`, the seq of the `finished` event once there is one, and `r`,
 * the seq where the current run begins after a manual retry (the previous
 * run's `finished`): a new reader starts there, so it sees this run's events
 * and its one `finished`, not the earlier run's.
 * Every append is one script that, atomically with the XADDs:
 *   - refuses an attempt older than `a` (a zombie: a worker stopped past its
 *     lock whose job another attempt took over): returns SUPERSEDED;
 *   - refuses anything after `finished` (the stream of a job ends with
 *     exactly one `finished`): returns CLOSED;
 *   - allocates the seqs in Redis (HINCRBY `s`), so no two writers ever
 *     collide, and raises `a` to the writer's attempt.
 * A new attempt claims the job at pick-up with an empty append, before it
 * writes anything; from then on the older attempt's writes are refused, and
 * its writer tells the runtime (`onSuperseded`), which aborts its handler.
 * A manual retry of a finished job reopens the stream (`reopenJobStream`).
 *
 * Retention: while the job runs the stream and its hash expire `ttlSeconds`
 * after the last write (refreshed at most every half TTL); the batch that
 * carries `finished` sets `retainAfterFinishS` instead (per kind), since
 * Postgres keeps the result and the stream only serves resuming clients.
 * The stream is also trimmed to about `maxLen` entries.
 *
 * Live delivery: the script PUBLISHes the appended entries on a channel
 * named like the stream key (see `parseLiveMessage`); a refused append
 * publishes nothing, so no relay ever hears an entry the stream does not
 * hold. The StreamHub (hub.ts) relays those messages and falls back to the
 * stream for anything pub/sub lost.
 *
 * Writers batch naturally: while one append round trip is in flight, tokens
 * accumulate and go out as one entry when it returns, so latency stays one
 * round trip and throughput grows under load.
 */
import type { Redis } from 'ioredis';
import type { JobEvent, JobEventName } from '../../shared/index.ts';
import { luaScript } from '../connections/index.ts';

/**
 * Appends one batch (possibly empty: a claim) for one attempt, fenced.
 *   KEYS[1]  the job stream            KEYS[2]  its state hash {a, s, f}
 *   ARGV[1]  MAXLEN (approximate)      ARGV[2]  attempt
 *   ARGV[3]  TTL in seconds (0: leave) ARGV[4..] pairs: event name, JSON payload
 * Returns the seq of the first entry appended (the last seq allocated, for an
 * empty batch), -1 SUPERSEDED (an attempt above ARGV[2] has claimed the job),
 * -2 CLOSED (the stream already holds `finished`).
 */
const appendScript = luaScript(`
local mine = tonumber(ARGV[2])
local a = tonumber(redis.call('HGET', KEYS[2], 'a') or '0')
if mine < a then return -1 end
local n = (#ARGV - 3) / 2
if n > 0 and redis.call('HEXISTS', KEYS[2], 'f') == 1 then return -2 end
if mine > a then redis.call('HSET', KEYS[2], 'a', mine) end
if redis.call('HEXISTS', KEYS[2], 's') == 0 then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local seq = 0
  if #last > 0 then seq = tonumber(string.sub(last[1][1], string.find(last[1][1], '-') + 1)) end
  redis.call('HSET', KEYS[2], 's', seq)
end
local top = redis.call('HINCRBY', KEYS[2], 's', n)
local first = top - n + 1
if n == 0 then first = top end
local live = {}
for i = 0, n - 1 do
  local e = ARGV[4 + 2 * i]
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-' .. (first + i), 'e', e, 'a', ARGV[2], 'd', ARGV[5 + 2 * i])
  live[i + 1] = { first + i, e, ARGV[2], ARGV[5 + 2 * i] }
  if e == 'finished' then redis.call('HSET', KEYS[2], 'f', first + i) end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  if n > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
end
if n > 0 then redis.call('PUBLISH', KEYS[1], cjson.encode(live)) end
return first
`);

/**
 * Claims the stream for an attempt at pick-up, and reads the job's cancel flag in the same step.
 *   KEYS[1] the job stream   KEYS[2] its state hash   KEYS[3] the job's cancel flag (same slot)
 *   ARGV[1] attempt          ARGV[2] TTL in seconds
 * Returns { last seq (-1: SUPERSEDED), 1 if the cancel flag is set else 0 }.
 */
const claimScript = luaScript(`
local mine = tonumber(ARGV[1])
local a = tonumber(redis.call('HGET', KEYS[2], 'a') or '0')
local cancelled = redis.call('EXISTS', KEYS[3])
if mine < a then return { -1, cancelled } end
if mine > a then redis.call('HSET', KEYS[2], 'a', mine) end
local s = redis.call('HGET', KEYS[2], 's')
if not s then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  s = 0
  if #last > 0 then s = tonumber(string.sub(last[1][1], string.find(last[1][1], '-') + 1)) end
  redis.call('HSET', KEYS[2], 's', s)
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return { tonumber(s), cancelled }
`);

/** What an append can answer besides a seq. */
export const SUPERSEDED = -1;
export const CLOSED = -2;

/**
 * The state hash key that fences a job stream. It must live in the stream's
 * Redis Cluster slot (the append script touches both): a stream key with a
 * hash tag (`…{<job id>}`, as keys.jobStream makes) gets `<key>:w`, whose tag
 * is the same; an untagged one gets `{<key>}:w`, whose tag is the whole key.
 */
export function jobStreamStateKey(streamKey: string): string {
  const open = streamKey.indexOf('{');
  const tagged = open >= 0 && streamKey.indexOf('}', open + 2) > open;
  return tagged ? `${streamKey}:w` : `{${streamKey}}:w`;
}

/**
 * Lets a new run of a finished job write again (a manual retry): the old
 * `finished` becomes where the new run starts (`r`), and is forgotten as the
 * stream's end; the seq counter and the attempt fence stay.
 *   KEYS[1] the state hash
 */
const reopenScript = luaScript(`
local f = redis.call('HGET', KEYS[1], 'f')
if f then
  redis.call('HSET', KEYS[1], 'r', f)
  redis.call('HDEL', KEYS[1], 'f')
end
return 1
`);

export async function reopenJobStream(redis: Redis, streamKey: string): Promise<void> {
  await reopenScript.run(redis, [jobStreamStateKey(streamKey)], []);
}

/** Where a reader of the job's current run starts: after the previous run's `finished` (0 if there was none). */
export async function runStartSeq(redis: Redis, streamKey: string): Promise<number> {
  return Number((await redis.hget(jobStreamStateKey(streamKey), 'r')) ?? 0);
}

/** The seq of the stream's `finished` event, if it has one. */
export async function finishedSeq(redis: Redis, streamKey: string): Promise<number | undefined> {
  const f = await redis.hget(jobStreamStateKey(streamKey), 'f');
  return f === null ? undefined : Number(f);
}

/**
 * Where a job's stream stands, in one atomic read (the stream and its state hash share a slot):
 * `runStart` as `runStartSeq`, `last` the last seq allocated (0 for none), `finished` as `finishedSeq`.
 */
export async function streamBounds(redis: Redis, streamKey: string): Promise<{ runStart: number; last: number; finished: number | undefined }> {
  const replies = await redis.multi().hmget(jobStreamStateKey(streamKey), 'r', 's', 'f').xrevrange(streamKey, '+', '-', 'COUNT', 1).exec();
  if (!replies) throw new Error('the stream bounds read was aborted');
  for (const [err] of replies) if (err) throw err;
  const [r, s, f] = replies[0]![1] as (string | null)[];
  const [top] = replies[1]![1] as [string, string[]][];
  // The hash allocates seqs with the XADDs, so its `s` is never below the stream's last id; without it, the stream says.
  const last = s !== null ? Number(s) : top ? Number(top[0].split('-')[1]) : 0;
  return { runStart: Number(r ?? 0), last, finished: f === null ? undefined : Number(f) };
}

/** An event waiting to be written: its name and payload (without seq and attempt, which the stream adds). */
export type PendingEntry = { e: string; d: Record<string, unknown> };

/**
 * The batching every stream writer shares: events queue in memory, and one
 * `write(batch)` round trip at a time takes everything queued so far. Text
 * events coalesce with the previous pending one when their other fields are
 * equal (`sameStream`), up to `maxChunkChars`. Write errors are kept in
 * `lastError`, never thrown: live output is best effort, the record is not.
 */
export abstract class BatchingStreamWriter {
  private pending: PendingEntry[] = [];
  private pumping: Promise<void> | undefined;
  private textChars = 0;
  lastError: unknown;

  constructor(private readonly maxChunkChars = 4096) {}

  get charsWritten(): number {
    return this.textChars;
  }

  /** Writes one batch, in order. Subclasses own the entry format and the seq allocation. */
  protected abstract write(batch: PendingEntry[]): Promise<void>;

  protected enqueue(e: string, d: Record<string, unknown>): void {
    this.pending.push({ e, d });
    this.kick();
  }

  /** Queues text, merged into the previous pending entry when it is the same event with the same other fields. */
  protected enqueueText(e: string, text: string, fields: Record<string, unknown> = {}): void {
    if (!text) return;
    this.textChars += text.length;
    const last = this.pending.at(-1);
    if (last && last.e === e && sameFields(last.d, fields) && (last.d.text as string).length + text.length <= this.maxChunkChars)
      last.d.text = (last.d.text as string) + text;
    else this.pending.push({ e, d: { ...fields, text } });
    this.kick();
  }

  async flush(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  private kick(): void {
    if (this.pumping) return;
    this.pumping = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.pump());
  }

  private async pump(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending;
        this.pending = [];
        await this.write(batch);
      }
    } catch (err) {
      this.lastError = err;
    } finally {
      this.pumping = undefined;
    }
  }
}

function sameFields(d: Record<string, unknown>, fields: Record<string, unknown>): boolean {
  const names = Object.keys(fields);
  return Object.keys(d).length === names.length + 1 && names.every((k) => d[k] === fields[k]);
}

export interface JobStreamOptions {
  maxLen: number;
  /** Expiry while the job runs, refreshed by writes. */
  ttlSeconds: number;
  /** Expiry once `finished` is written. @defaultValue ttlSeconds */
  retainAfterFinishS?: number;
  maxChunkChars?: number;
  /** Called once when an append is refused because a newer attempt owns the job. */
  onSuperseded?: () => void;
}

/** The writer of one attempt. Write errors and refusals are kept, never thrown: live output is best effort, the record is not. */
export class JobStreamWriter extends BatchingStreamWriter {
  private expireSetAt = 0;
  /** Set once a newer attempt owns the job: nothing this writer appends lands any more. */
  superseded = false;
  /** Set when the stream already ended with `finished` (by this writer or another). */
  closed = false;
  private lastSeq = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    readonly attempt: number,
    private readonly opts: JobStreamOptions,
  ) {
    super(opts.maxChunkChars);
  }

  /**
   * Claims the stream for this attempt (from now on older attempts' appends are refused)
   * and reports whether earlier attempts wrote anything; with `cancelFlagKey` (the job's
   * cancel flag, in the stream's slot) also whether a cancel is pending, in the same round trip.
   */
  async init(cancelFlagKey?: string): Promise<{ hadOutput: boolean; superseded: boolean; cancelRequested: boolean }> {
    const [r, cancelled] = (await claimScript.run(
      this.redis,
      [this.key, jobStreamStateKey(this.key), cancelFlagKey ?? `${jobStreamStateKey(this.key)}:no-cancel-flag`],
      [String(this.attempt), this.opts.ttlSeconds],
    )) as [number, number];
    if (Number(r) === SUPERSEDED) this.markSuperseded();
    else this.lastSeq = Number(r);
    return { hadOutput: Number(r) > 0, superseded: this.superseded, cancelRequested: Number(cancelled) === 1 };
  }

  /** The seq of the last entry this writer appended (or found at init). */
  get seq(): number {
    return this.lastSeq;
  }

  tokens(text: string): void {
    this.enqueueText('tokens' satisfies JobEventName, text);
  }

  progress(progress: unknown): void {
    this.enqueue('progress' satisfies JobEventName, { progress });
  }

  reset(): void {
    this.enqueue('reset' satisfies JobEventName, {});
  }

  /** Writes the final event after everything before it, and waits for it to land. True if it landed. */
  async finished(payload: Record<string, unknown>): Promise<boolean> {
    this.enqueue('finished' satisfies JobEventName, payload);
    await this.flush();
    return !this.superseded && this.closed;
  }

  private markSuperseded(): void {
    if (this.superseded) return;
    this.superseded = true;
    this.opts.onSuperseded?.();
  }

  protected async write(batch: PendingEntry[]): Promise<void> {
    if (this.superseded || this.closed) return;
    const finishing = batch.some((p) => p.e === 'finished');
    // The TTL is refreshed on the first write, then at most every half TTL; the final event sets the retention.
    const now = Date.now();
    let ttl = 0;
    if (finishing) ttl = this.opts.retainAfterFinishS ?? this.opts.ttlSeconds;
    else if (now - this.expireSetAt > (this.opts.ttlSeconds * 1000) / 2) {
      ttl = this.opts.ttlSeconds;
      this.expireSetAt = now;
    }
    const args = [this.opts.maxLen, String(this.attempt), ttl, ...batch.flatMap((p) => [p.e, JSON.stringify(p.d)])];
    try {
      const first = Number(await appendScript.run(this.redis, [this.key, jobStreamStateKey(this.key)], args));
      if (first === SUPERSEDED) this.markSuperseded();
      else if (first === CLOSED) this.closed = true;
      else {
        this.lastSeq = first + batch.length - 1;
        if (finishing) this.closed = true;
      }
    } catch (err) {
      this.lastError = err;
    }
  }
}

/** Any stream entry in the shared format (`e`, `a`, `d`), whatever its catalog. */
export interface StreamEvent {
  event: string;
  data: { seq: number; attempt: number } & Record<string, unknown>;
}

export function parseStreamEntry(id: string, fields: string[]): StreamEvent | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  const seq = Number(id.split('-')[1]);
  const attempt = Number(f.a ?? 0);
  const event = f.e;
  if (!event || !Number.isFinite(seq)) return undefined;
  const d = f.d ? (JSON.parse(f.d) as Record<string, unknown>) : {};
  return { event, data: { ...d, seq, attempt } };
}

/**
 * The live message of one appended batch, published on the stream key's channel:
 * a JSON array of `[seq, event, attempt, payloadJson]`, payloadJson being the entry's `d` field.
 */
export function parseLiveMessage(message: string): StreamEvent[] {
  const rows = JSON.parse(message) as [number, string, string | number, string][];
  if (!Array.isArray(rows)) throw new Error('live message is not an array');
  return rows.map(([seq, e, a, d]) => parseStreamEntry(`0-${seq}`, ['e', e, 'a', String(a), 'd', d])).filter((x): x is StreamEvent => x !== undefined);
}

/** A job stream entry; the job stream only ever holds the job catalog's events. */
export function parseEntry(id: string, fields: string[]): JobEvent | undefined {
  return parseStreamEntry(id, fields) as JobEvent | undefined;
}

/** Events after `afterSeq`, in order. */
export async function readEvents(redis: Redis, key: string, afterSeq: number, count = 1000): Promise<JobEvent[]> {
  const entries = (await redis.xrange(key, `(0-${afterSeq}`, '+', 'COUNT', count)) as [string, string[]][];
  return entries.map(([id, fields]) => parseEntry(id, fields)).filter((e): e is JobEvent => e !== undefined);
}
