/**
 * A job's live events in a Redis Stream.
 *
 * Key: keys(prefix).jobStream(id). Entry id: `0-<seq>`, where seq is the
 * per-job event sequence (1, 2, 3, ...), so `XRANGE key (0-<lastSeq> +`
 * returns exactly what a reconnecting client has not seen. Fields:
 *   e  event name: tokens | progress | reset | finished
 *   a  attempt number of the execution that wrote it
 *   d  JSON of the event's remaining payload (tokens: {text}; progress:
 *      {progress}; reset: {}; finished: {state, result?, error?, usage?})
 * The stream is trimmed (MAXLEN ~) and expires after a TTL; Postgres keeps
 * the final result.
 *
 * Writers batch naturally: while one XADD round trip is in flight, tokens
 * accumulate and go out as one entry when it returns, so latency stays one
 * round trip and throughput grows under load.
 *
 * Live delivery: each batch is one script (`appendScript`) that XADDs its
 * entries and then PUBLISHes them on a channel named like the stream key
 * (see `parseLiveMessage`). A refused XADD (an id not above the stream's
 * last, as when a stalled attempt and its successor both write) stops the
 * script before the PUBLISH, so no relay ever hears an entry the stream
 * does not hold. The API's StreamHub relays those messages and falls back
 * to the stream for anything pub/sub lost (api/realtime/hub.ts).
 */
import type { Redis } from 'ioredis';
import type { JobEvent, JobEventName } from '../../shared/index.ts';
import { luaScript } from '../connections/index.ts';

/**
 * Appends one batch and announces it.
 *   KEYS[1]  the job stream
 *   ARGV[1]  MAXLEN (approximate), ARGV[2] attempt, ARGV[3] TTL in seconds (0: leave it),
 *   ARGV[4]  seq of the first entry, ARGV[5..] pairs: event name, JSON payload
 */
const appendScript = luaScript(`
local n = (#ARGV - 4) / 2
local first = tonumber(ARGV[4])
local live = {}
for i = 0, n - 1 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-' .. (first + i), 'e', ARGV[5 + 2 * i], 'a', ARGV[2], 'd', ARGV[6 + 2 * i])
  live[i + 1] = { first + i, ARGV[5 + 2 * i], ARGV[2], ARGV[6 + 2 * i] }
end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
redis.call('PUBLISH', KEYS[1], cjson.encode(live))
return n
`);

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
    if (last && last.e === e && sameFields(last.d, fields) && (last.d.text as string).length + text.length <= this.maxChunkChars) last.d.text = (last.d.text as string) + text;
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

export class JobStreamWriter extends BatchingStreamWriter {
  private seq = 0;
  private expireSetAt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    readonly attempt: number,
    private readonly opts: { maxLen: number; ttlSeconds: number; maxChunkChars?: number },
  ) {
    super(opts.maxChunkChars);
  }

  /** Continues the sequence after what earlier attempts wrote. */
  async init(): Promise<{ hadOutput: boolean }> {
    const last = (await this.redis.xrevrange(this.key, '+', '-', 'COUNT', 1)) as [string, string[]][];
    const id = last[0]?.[0];
    this.seq = id ? Number(id.split('-')[1]) : 0;
    return { hadOutput: this.seq > 0 };
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

  /** Writes the final event after everything before it, and waits for it to land. */
  async finished(payload: Record<string, unknown>): Promise<void> {
    this.enqueue('finished' satisfies JobEventName, payload);
    await this.flush();
  }

  protected async write(batch: PendingEntry[]): Promise<void> {
    const first = this.seq + 1;
    this.seq += batch.length;
    // The TTL is refreshed on the first write, then at most every half TTL, and always with the final event.
    const now = Date.now();
    const refresh = now - this.expireSetAt > (this.opts.ttlSeconds * 1000) / 2 || batch.some((p) => p.e === 'finished');
    if (refresh) this.expireSetAt = now;
    const args = [this.opts.maxLen, String(this.attempt), refresh ? this.opts.ttlSeconds : 0, first, ...batch.flatMap((p) => [p.e, JSON.stringify(p.d)])];
    try {
      await appendScript.run(this.redis, [this.key], args);
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
