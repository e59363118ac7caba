/**
 * One reader per API process for every live job stream its clients watch.
 *
 * A single connection runs `XREAD BLOCK` over all watched stream keys; when a
 * key is added while it blocks, a second connection sends `CLIENT UNBLOCK`
 * so the next read includes it. Each subscriber has its own cursor: a late
 * subscriber is backfilled with XRANGE while live entries for it are
 * buffered, then the buffer is drained, so every subscriber sees each seq
 * exactly once and in order.
 */
import type { Redis } from 'ioredis';
import { parseStreamEntry, type StreamEvent } from '../../platform/job-stream.ts';
import type { Logger } from '../../platform/log.ts';
import type { JobEvent } from '../../shared/index.ts';

interface Sub {
  cursor: number;
  ready: boolean;
  buffer: StreamEvent[];
  fn: (e: StreamEvent) => void;
}

interface Watch {
  cursor: number;
  subs: Set<Sub>;
}

export class StreamHub {
  private readonly watched = new Map<string, Watch>();
  private readerId: number | undefined;
  private blocked = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly reader: Redis,
    private readonly control: Redis,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.readerId = (await this.reader.client('ID')) as number;
    this.loop = this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.unblock();
    await this.loop;
  }

  get watchedStreams(): number {
    return this.watched.size;
  }

  /**
   * Delivers every event of `key` with seq > afterSeq, in order, until
   * unsubscribed. The key decides the catalog: job streams carry JobEvent
   * (the default), discussion room streams RoomEvent.
   */
  subscribe<E extends StreamEvent | JobEvent = JobEvent>(key: string, afterSeq: number, fn: (e: E) => void): () => void {
    const sub: Sub = { cursor: afterSeq, ready: false, buffer: [], fn: fn as (e: StreamEvent) => void };
    let w = this.watched.get(key);
    if (!w) {
      w = { cursor: afterSeq, subs: new Set([sub]) };
      this.watched.set(key, w);
      sub.ready = true;
      this.wake?.();
      void this.unblock();
    } else {
      w.subs.add(sub);
      if (afterSeq >= w.cursor) sub.ready = true;
      else void this.backfill(key, sub);
    }
    return () => {
      const cur = this.watched.get(key);
      if (!cur) return;
      cur.subs.delete(sub);
      if (cur.subs.size === 0) this.watched.delete(key);
    };
  }

  private async backfill(key: string, sub: Sub): Promise<void> {
    try {
      for (;;) {
        const entries = (await this.control.xrange(key, `(0-${sub.cursor}`, '+', 'COUNT', 1000)) as [string, string[]][];
        for (const [id, fields] of entries) {
          const e = parseStreamEntry(id, fields);
          if (e) deliver(sub, e);
        }
        if (entries.length < 1000) break;
      }
    } catch (err) {
      this.log.warn({ err, key }, 'backfill failed');
    }
    for (const e of sub.buffer) deliver(sub, e);
    sub.buffer = [];
    sub.ready = true;
  }

  private async unblock(): Promise<void> {
    if (!this.blocked || this.readerId === undefined) return;
    await this.control.client('UNBLOCK', this.readerId).catch(() => {});
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      if (this.watched.size === 0) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      const streamKeys = [...this.watched.keys()];
      const ids = streamKeys.map((k) => `0-${this.watched.get(k)!.cursor}`);
      let res: [string, [string, string[]][]][] | null;
      try {
        this.blocked = true;
        res = (await this.reader.xread('COUNT', 1000, 'BLOCK', 5000, 'STREAMS', ...streamKeys, ...ids)) as typeof res;
      } catch (err) {
        if (this.closed) return;
        this.log.warn({ err }, 'stream hub read failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      } finally {
        this.blocked = false;
      }
      if (!res) continue;
      for (const [key, entries] of res) {
        const w = this.watched.get(key);
        if (!w) continue;
        for (const [id, fields] of entries) {
          const e = parseStreamEntry(id, fields);
          if (!e) continue;
          w.cursor = Math.max(w.cursor, e.data.seq);
          for (const sub of w.subs) {
            if (sub.ready) deliver(sub, e);
            else sub.buffer.push(e);
          }
        }
      }
    }
  }
}

function deliver(sub: Sub, e: StreamEvent): void {
  if (e.data.seq <= sub.cursor) return;
  sub.cursor = e.data.seq;
  sub.fn(e);
}
