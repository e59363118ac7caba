/**
 * One relay per API process for every live stream its clients watch (job
 * streams and discussion room streams).
 *
 * The Redis Stream is the record: every event has its seq there, and a
 * client that reconnects with its last seq is served from it. Live delivery
 * rides on pub/sub: writers PUBLISH each batch they append, on a channel
 * named like the stream key, inside the same append script as the XADDs
 * (job-stream.ts, room-stream.ts). So the live
 * hop costs what a bare pub/sub relay costs, and nothing blocks in Redis.
 *
 * Per watched key the hub keeps the highest seq it has relayed (`cursor`)
 * and runs everything for that key through one serial chain:
 * - a message whose first seq follows the cursor is relayed at once (with
 *   nothing queued for the key it skips the chain: no promise per token);
 * - older seqs are dropped (duplicates);
 * - a gap (a message lost, or published before the SUBSCRIBE took effect)
 *   is filled from the stream with XRANGE before anything after it.
 * Pub/sub is at-most-once, so the stream also covers what pub/sub cannot: on
 * every (re)connection of the subscriber connection, and every
 * `catchUpMs` for keys that heard nothing meanwhile, the hub reads the
 * stream after its cursor. A lost last message (a `finished`) is thus
 * delivered within `catchUpMs` at worst.
 *
 * Each subscriber also has its own cursor: a late subscriber is backfilled
 * with XRANGE while live events for it are buffered, then the buffer is
 * drained, so every subscriber sees each seq exactly once and in order.
 */
import type { Redis } from 'ioredis';
import { parseLiveMessage, parseStreamEntry, type StreamEvent } from './job-stream.ts';
import type { Logger } from '../observability/index.ts';
import type { JobEvent } from '../../shared/index.ts';

interface Sub {
  cursor: number;
  ready: boolean;
  /** Unsubscribed: nothing more is delivered, even by a backfill in flight. */
  gone: boolean;
  buffer: StreamEvent[];
  fn: (e: StreamEvent) => void;
}

interface Watch {
  /** Highest seq relayed for this key (everything up to it was distributed in order). */
  cursor: number;
  subs: Set<Sub>;
  /** The key's serial chain: setup, live messages and catch-ups run one after another. */
  chain: Promise<void>;
  /** Steps queued on the chain and not yet finished: at 0 a live message in order is relayed at once, without the chain. */
  queued: number;
  /** When the key last heard anything (a live message or a catch-up that found entries). */
  heardAt: number;
  /** Its SUBSCRIBE took effect; until then (or if it failed) the periodic catch-up serves the key and retries it. */
  live: boolean;
  closed: boolean;
}

export interface StreamHubOptions {
  /** How often a key that heard nothing is checked against its stream. @defaultValue 5000 ms */
  catchUpMs?: number;
}

const PAGE = 1000;

export class StreamHub {
  private readonly watched = new Map<string, Watch>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private connectedOnce = false;

  /**
   * @param subscriber a connection of its own: it enters pub/sub mode.
   * @param reader any connection for XRANGE / XREVRANGE.
   */
  constructor(
    private readonly subscriber: Redis,
    private readonly reader: Redis,
    private readonly log: Logger,
    private readonly opts: StreamHubOptions = {},
  ) {}

  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    // After a reconnect: subscribe again (ioredis does too; a second SUBSCRIBE is harmless) and, once
    // that took effect, read from the streams what was published while the connection was down.
    this.subscriber.on('ready', () => {
      if (!this.connectedOnce) {
        this.connectedOnce = true;
        return;
      }
      const keys = [...this.watched.keys()];
      if (keys.length === 0) return;
      this.subscriber.subscribe(...keys).then(
        () => keys.forEach((key) => this.catchUp(key)),
        (err: unknown) => this.log.warn({ err }, 'resubscribing the live streams failed; the periodic catch-up serves them'),
      );
    });
    if (this.subscriber.status === 'ready') this.connectedOnce = true;
    const every = this.opts.catchUpMs ?? 5000;
    this.timer = setInterval(() => {
      const quietSince = Date.now() - every;
      for (const [key, w] of this.watched) {
        if (!w.live) this.goLive(key, w);
        if (w.heardAt < quietSince) this.catchUp(key);
      }
    }, every);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const chains = [...this.watched.values()].map((w) => w.chain);
    for (const w of this.watched.values()) w.closed = true;
    this.watched.clear();
    await Promise.allSettled(chains);
  }

  get watchedStreams(): number {
    return this.watched.size;
  }

  /** Resolves once everything queued so far for `key` (its setup included) has run. */
  async settled(key: string): Promise<void> {
    await this.watched.get(key)?.chain;
  }

  /** How many subscribers `key` has now (SSE streams and socket rooms alike): what a client that left must no longer hold. */
  subscriberCount(key: string): number {
    return this.watched.get(key)?.subs.size ?? 0;
  }

  /**
   * Delivers every event of `key` with seq > afterSeq, in order, until
   * unsubscribed. The key decides the catalog: job streams carry JobEvent
   * (the default), discussion room streams RoomEvent.
   */
  subscribe<E extends StreamEvent | JobEvent = JobEvent>(key: string, afterSeq: number, fn: (e: E) => void): () => void {
    const sub: Sub = { cursor: afterSeq, ready: false, gone: false, buffer: [], fn: fn as (e: StreamEvent) => void };
    let w = this.watched.get(key);
    if (!w) {
      const fresh: Watch = { cursor: 0, subs: new Set(), chain: Promise.resolve(), queued: 0, heardAt: Date.now(), live: false, closed: false };
      this.watched.set(key, fresh);
      // SUBSCRIBE first, then read where the stream ends: whatever is appended after that arrives as a message.
      this.enqueue(key, fresh, async () => {
        await this.subscriber.subscribe(key).then(
          () => void (fresh.live = true),
          (err: unknown) => this.log.warn({ err, key }, 'subscribing to a live stream failed; retrying, and reading the stream meanwhile'),
        );
        const last = (await this.reader.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
        fresh.cursor = last[0] ? seqOf(last[0][0]) : 0;
      });
      w = fresh;
    }
    w.subs.add(sub);
    const watch = w;
    // After the setup (and anything queued before), either the subscriber is already level with the key or it backfills.
    this.enqueue(key, watch, async () => {
      if (sub.cursor >= watch.cursor) sub.ready = true;
      else void this.backfill(key, sub);
    });
    return () => {
      sub.gone = true;
      watch.subs.delete(sub);
      if (watch.subs.size > 0 || this.watched.get(key) !== watch) return;
      this.watched.delete(key);
      watch.closed = true;
      this.enqueue(key, watch, async () => {
        // A new watch for the key may have subscribed meanwhile; only the last one out unsubscribes.
        if (!this.watched.has(key)) await this.subscriber.unsubscribe(key);
      });
    };
  }

  private goLive(key: string, w: Watch): void {
    this.enqueue(key, w, async () => {
      if (w.live || w.closed) return;
      await this.subscriber.subscribe(key);
      w.live = true;
    });
  }

  /** Runs `step` after everything already queued for the key; failures are logged and do not break the chain. */
  private enqueue(key: string, w: Watch, step: () => Promise<void>): void {
    w.queued++;
    w.chain = w.chain
      .then(step)
      .catch((err: unknown) => {
        if (!this.closed) this.log.warn({ err, key }, 'stream relay step failed');
      })
      .finally(() => void w.queued--);
  }

  private onMessage(key: string, message: string): void {
    const w = this.watched.get(key);
    if (!w) return;
    let events: StreamEvent[];
    try {
      events = parseLiveMessage(message);
    } catch (err) {
      this.log.warn({ err, key }, 'unreadable live message; reading the stream instead');
      this.catchUp(key);
      return;
    }
    const first = events[0];
    // The common case, a message that follows the cursor while nothing is queued for the key: relayed now,
    // in order by construction, without a trip through the chain (two promises and a microtask per token).
    if (w.queued === 0 && (!first || first.data.seq <= w.cursor + 1)) {
      w.heardAt = Date.now();
      for (const e of events) this.relay(w, e);
      return;
    }
    this.enqueue(key, w, async () => {
      w.heardAt = Date.now();
      if (first && first.data.seq > w.cursor + 1) await this.fill(key, w);
      for (const e of events) this.relay(w, e);
    });
  }

  /** Reads the stream after the key's cursor and relays what is there, in order. */
  private catchUp(key: string): void {
    const w = this.watched.get(key);
    if (!w) return;
    this.enqueue(key, w, async () => {
      if (await this.fill(key, w)) w.heardAt = Date.now();
    });
  }

  private async fill(key: string, w: Watch): Promise<boolean> {
    let found = false;
    await this.readAfter(
      key,
      () => w.cursor,
      (e) => {
        this.relay(w, e);
        found = true;
      },
    );
    return found;
  }

  /**
   * Every entry of the stream after `from()`, in order, page by page; `from()` is read again for
   * each page, and the reading stops when it no longer moves (the consumer went away).
   */
  private async readAfter(key: string, from: () => number, each: (e: StreamEvent) => void): Promise<void> {
    for (;;) {
      const start = from();
      const entries = (await this.reader.xrange(key, `(0-${start}`, '+', 'COUNT', PAGE)) as [string, string[]][];
      for (const [id, fields] of entries) {
        const e = parseStreamEntry(id, fields);
        if (e) each(e);
      }
      if (entries.length < PAGE || from() === start) return;
    }
  }

  private relay(w: Watch, e: StreamEvent): void {
    if (e.data.seq <= w.cursor || w.closed) return;
    w.cursor = e.data.seq;
    for (const sub of w.subs) {
      if (sub.ready) deliver(sub, e);
      else sub.buffer.push(e);
    }
  }

  private async backfill(key: string, sub: Sub): Promise<void> {
    try {
      await this.readAfter(
        key,
        () => sub.cursor,
        (e) => deliver(sub, e),
      );
    } catch (err) {
      this.log.warn({ err, key }, 'backfill failed');
    }
    for (const e of sub.buffer) deliver(sub, e);
    sub.buffer = [];
    sub.ready = true;
  }
}

function seqOf(id: string): number {
  return Number(id.split('-')[1]);
}

function deliver(sub: Sub, e: StreamEvent): void {
  if (sub.gone || e.data.seq <= sub.cursor) return;
  sub.cursor = e.data.seq;
  sub.fn(e);
}
