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
 */
import type { Redis } from 'ioredis';
import type { JobEvent, JobEventName } from '../shared/index.ts';

type Pending = { e: JobEventName; d: Record<string, unknown> };

export class JobStreamWriter {
  private seq = 0;
  private pending: Pending[] = [];
  private pumping: Promise<void> | undefined;
  private textChars = 0;
  lastError: unknown;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    readonly attempt: number,
    private readonly opts: { maxLen: number; ttlSeconds: number; maxChunkChars?: number },
  ) {}

  /** Continues the sequence after what earlier attempts wrote. */
  async init(): Promise<{ hadOutput: boolean }> {
    const last = (await this.redis.xrevrange(this.key, '+', '-', 'COUNT', 1)) as [string, string[]][];
    const id = last[0]?.[0];
    this.seq = id ? Number(id.split('-')[1]) : 0;
    return { hadOutput: this.seq > 0 };
  }

  get charsWritten(): number {
    return this.textChars;
  }

  tokens(text: string): void {
    if (!text) return;
    this.textChars += text.length;
    const last = this.pending.at(-1);
    const max = this.opts.maxChunkChars ?? 4096;
    if (last && last.e === 'tokens' && (last.d.text as string).length + text.length <= max) last.d.text = (last.d.text as string) + text;
    else this.pending.push({ e: 'tokens', d: { text } });
    this.kick();
  }

  progress(progress: unknown): void {
    this.pending.push({ e: 'progress', d: { progress } });
    this.kick();
  }

  reset(): void {
    this.pending.push({ e: 'reset', d: {} });
    this.kick();
  }

  /** Writes the final event after everything before it, and waits for it to land. */
  async finished(payload: Record<string, unknown>): Promise<void> {
    this.pending.push({ e: 'finished', d: payload });
    this.kick();
    await this.flush();
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
        const pipe = this.redis.pipeline();
        for (const p of batch) {
          this.seq += 1;
          pipe.xadd(this.key, 'MAXLEN', '~', this.opts.maxLen, `0-${this.seq}`, 'e', p.e, 'a', String(this.attempt), 'd', JSON.stringify(p.d));
        }
        pipe.expire(this.key, this.opts.ttlSeconds);
        const results = await pipe.exec();
        const failed = results?.find(([err]) => err);
        if (failed) this.lastError = failed[0];
      }
    } catch (err) {
      this.lastError = err;
    } finally {
      this.pumping = undefined;
    }
  }
}

export function parseEntry(id: string, fields: string[]): JobEvent | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  const seq = Number(id.split('-')[1]);
  const attempt = Number(f.a);
  const event = f.e as JobEventName | undefined;
  if (!event || !Number.isFinite(seq)) return undefined;
  const d = f.d ? (JSON.parse(f.d) as Record<string, unknown>) : {};
  return { event, data: { ...d, seq, attempt } } as JobEvent;
}

/** Events after `afterSeq`, in order. */
export async function readEvents(redis: Redis, key: string, afterSeq: number, count = 1000): Promise<JobEvent[]> {
  const entries = (await redis.xrange(key, `(0-${afterSeq}`, '+', 'COUNT', count)) as [string, string[]][];
  return entries.map(([id, fields]) => parseEntry(id, fields)).filter((e): e is JobEvent => e !== undefined);
}
