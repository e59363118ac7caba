/**
 * The API's stream relay against real Redis: live events ride pub/sub, and
 * whatever pub/sub loses (a message published while the relay was not
 * listening, a dropped connection, a lost last message) is read back from
 * the stream, so every subscriber still gets every seq once, in order.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StreamHub } from '../../platform/streams/index.ts';
import { JobStreamWriter, type StreamEvent } from '../../platform/streams/index.ts';
import { createLogger } from '../../platform/observability/index.ts';
import { connectRedis } from '../../platform/connections/index.ts';

const url = process.env.REDIS_URL!;
// connectRedis, so the suite also runs on a Redis Cluster (REDIS_URL redis+cluster://…).
const redis = connectRedis(url);
const log = createLogger('test', 'silent');
const open: { hub: StreamHub; sub: Redis }[] = [];
afterEach(async () => {
  for (const { hub, sub } of open.splice(0)) {
    await hub.close();
    sub.disconnect();
  }
});
afterAll(() => redis.quit());

async function startHub(catchUpMs: number) {
  const sub = connectRedis(url, { blocking: true });
  const hub = new StreamHub(sub, redis, log, { catchUpMs });
  await hub.start();
  open.push({ hub, sub });
  return { hub, sub };
}

/** Appends an entry to the stream only: as if its live message were lost. */
const silentAppend = (key: string, seq: number, text: string) => redis.xadd(key, `0-${seq}`, 'e', 'tokens', 'a', '1', 'd', JSON.stringify({ text }));

function collect(hub: StreamHub, key: string, afterSeq = 0) {
  const got: StreamEvent[] = [];
  const stop = hub.subscribe<StreamEvent>(key, afterSeq, (e) => got.push(e));
  return { got, stop, seqs: () => got.map((e) => e.data.seq) };
}

async function until(fn: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const key = () => `test-hub:${randomUUID()}`;
const writer = (k: string, attempt = 1) => new JobStreamWriter(redis, k, attempt, { maxLen: 1000, ttlSeconds: 60 });

describe('StreamHub', () => {
  it('relays published batches in order, with their text', async () => {
    const { hub } = await startHub(60_000);
    const k = key();
    const c = collect(hub, k);
    await hub.settled(k);
    const w = writer(k);
    await w.init();
    for (let i = 0; i < 20; i++) {
      w.tokens(`t${i} `);
      if (i % 5 === 4) await w.flush();
    }
    await w.finished({ state: 'completed' });
    await until(() => c.got.at(-1)?.event === 'finished');
    expect(c.seqs()).toEqual(Array.from({ length: c.got.length }, (_, i) => i + 1));
    expect(
      c.got
        .filter((e) => e.event === 'tokens')
        .map((e) => e.data.text)
        .join(''),
    ).toBe(Array.from({ length: 20 }, (_, i) => `t${i} `).join(''));
  });

  it('fills a gap from the stream when a live message arrives after a lost one', async () => {
    const { hub } = await startHub(60_000);
    const k = key();
    const c = collect(hub, k);
    await hub.settled(k);
    await silentAppend(k, 1, 'lost ');
    const w = writer(k);
    await w.init();
    w.tokens('heard');
    await w.flush();
    await until(() => c.got.length === 2);
    expect(c.seqs()).toEqual([1, 2]);
    expect(c.got.map((e) => e.data.text)).toEqual(['lost ', 'heard']);
  });

  it('delivers a lost last message from the stream when nothing follows it', async () => {
    const { hub } = await startHub(100);
    const k = key();
    const c = collect(hub, k);
    await hub.settled(k);
    await silentAppend(k, 1, 'only');
    await until(() => c.got.length === 1);
    expect(c.got[0]!.data).toMatchObject({ seq: 1, text: 'only' });
  });

  it('catches up after its subscriber connection drops and reconnects', async () => {
    const { hub, sub } = await startHub(60_000);
    const k = key();
    const c = collect(hub, k);
    const w = writer(k);
    await w.init();
    w.tokens('before ');
    await w.flush();
    await until(() => c.got.length === 1);
    const reconnected = new Promise<void>((resolve) => sub.once('ready', () => resolve()));
    sub.disconnect(true);
    // Published while the relay is away: pub/sub drops it, the stream keeps it.
    w.tokens('during ');
    await w.flush();
    await reconnected;
    await until(() => c.got.length === 2);
    w.tokens('after');
    await w.flush();
    await until(() => c.got.length === 3);
    expect(c.seqs()).toEqual([1, 2, 3]);
    expect(c.got.map((e) => e.data.text).join('')).toBe('before during after');
  });

  it('gives a late subscriber the history and then the live tail, each seq once', async () => {
    const { hub } = await startHub(60_000);
    const k = key();
    const w = writer(k);
    await w.init();
    const early = collect(hub, k);
    await hub.settled(k);
    for (let i = 0; i < 10; i++) {
      w.tokens(`a${i} `);
      await w.flush();
    }
    const late = collect(hub, k, 3);
    for (let i = 0; i < 10; i++) {
      w.tokens(`b${i} `);
      await w.flush();
    }
    await w.finished({ state: 'completed' });
    await until(() => early.got.at(-1)?.event === 'finished' && late.got.at(-1)?.event === 'finished');
    expect(early.seqs()).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(late.seqs()).toEqual(Array.from({ length: 18 }, (_, i) => i + 4));
  });

  it('relays nothing of a batch the stream refused (a stalled attempt writing after its successor claimed the job)', async () => {
    const { hub } = await startHub(60_000);
    const k = key();
    const c = collect(hub, k);
    await hub.settled(k);
    const stale = writer(k, 1);
    await stale.init();
    const successor = writer(k, 2);
    await successor.init();
    successor.tokens('kept ');
    await successor.flush();
    stale.tokens('refused ');
    await stale.flush();
    expect(stale.superseded).toBe(true);
    successor.tokens('next');
    await successor.finished({ state: 'completed' });
    await until(() => c.got.at(-1)?.event === 'finished');
    expect(c.got.filter((e) => e.event === 'tokens').map((e) => e.data.text)).toEqual(['kept ', 'next']);
    expect(c.seqs()).toEqual([1, 2, 3]);
  });

  it('stops delivering to a subscriber that left, and forgets the key when the last one leaves', async () => {
    const { hub } = await startHub(60_000);
    const k = key();
    const c = collect(hub, k);
    await hub.settled(k);
    c.stop();
    expect(hub.watchedStreams).toBe(0);
    // A barrier: another stream's subscriber, written to after. The hub relays in publish order,
    // so once the barrier's event is in, anything for the departed subscriber would be too.
    const k2 = key();
    const barrier = collect(hub, k2);
    await hub.settled(k2);
    const w = writer(k);
    await w.init();
    w.tokens('unheard');
    await w.flush();
    const w2 = writer(k2);
    await w2.init();
    w2.tokens('barrier');
    await w2.flush();
    await until(() => barrier.got.length > 0);
    expect(c.got).toEqual([]);
  });
});
