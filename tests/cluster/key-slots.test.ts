/**
 * On a real 3-node Redis Cluster (project `redis-cluster`): every group of
 * keys that one script, MULTI or multi-key command touches hashes to one slot,
 * and the platform's multi-key operations run there without CROSSSLOT errors.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { createBudgets } from '../../platform/usage/index.ts';
import { connectDb } from '../../platform/connections/index.ts';
import { keys } from '../../platform/keys.ts';
import { createLogger } from '../../platform/observability/index.ts';
import { ResponseCache } from '../../platform/ollama/cache.ts';
import { bullPrefix } from '../../platform/jobs/index.ts';
import { connectRedis, isClusterUrl } from '../../platform/connections/index.ts';
import { appendRoomEvents, expireRoomStream, readRoomMessages } from '../../platform/streams/index.ts';
import { QueueName } from '../../shared/index.ts';

const url = process.env.REDIS_URL!;
const redis = connectRedis(url);
const db = connectDb(process.env.DATABASE_URL!, { pool: 2 });
const prefix = `t${randomUUID().slice(0, 8)}`;
const k = keys(prefix);
afterAll(async () => {
  await redis.quit();
  await db.destroy();
});

const slot = async (key: string) => Number(await redis.call('CLUSTER', 'KEYSLOT', key));
const slots = async (list: string[]) => new Set(await Promise.all(list.map(slot)));

describe('on a Redis Cluster', () => {
  it('talks to a real cluster of 3 masters', async () => {
    expect(isClusterUrl(url)).toBe(true);
    const masters = (redis as unknown as { nodes(role: 'master'): unknown[] }).nodes('master');
    expect(masters).toHaveLength(3);
    expect(String(await redis.call('CLUSTER', 'INFO'))).toMatch(/cluster_state:ok[\s\S]*cluster_known_nodes:3/);
  });

  it('keeps each BullMQ queue in one slot, and spreads the queues', async () => {
    const perQueue = await Promise.all(
      QueueName.options.map(async (q) => {
        const base = `${bullPrefix(prefix, q)}:${q}`;
        const s = await slots(
          ['wait', 'paused', 'prioritized', 'active', 'delayed', 'completed', 'failed', 'stalled', 'meta', 'id', 'events', 'marker', 'pc', randomUUID()].map(
            (x) => `${base}:${x}`,
          ),
        );
        expect(s.size, q).toBe(1);
        return [...s][0]!;
      }),
    );
    expect(new Set(perQueue).size).toBeGreaterThan(1);
  });

  it("keeps a queue of child jobs in its parent queue's slot, and runs a parent and child across them", async () => {
    expect(await slot(`${bullPrefix(prefix, 'code-batch')}:code-batch:wait`)).toBe(await slot(`${bullPrefix(prefix, 'code')}:code:wait`));
    const parents = new Queue('code', { connection: redis, prefix: bullPrefix(prefix, 'code') });
    const batches = new Queue('code-batch', { connection: redis, prefix: bullPrefix(prefix, 'code-batch') });
    const worker = new Worker('code-batch', async () => 'done', {
      connection: connectRedis(url, { blocking: true }),
      prefix: bullPrefix(prefix, 'code-batch'),
    });
    try {
      const parent = await parents.add('code.index', {}, { jobId: randomUUID() });
      // Adding a child and ending it both write the parent's keys, in the child's script: a CROSSSLOT error if the slots differed.
      await batches.add('code.batch', {}, { jobId: randomUUID(), parent: { id: parent.id!, queue: parents.qualifiedName }, ignoreDependencyOnFailure: true });
      for (let i = 0; i < 100 && (await parent.getDependenciesCount()).processed !== 1; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await parent.getDependenciesCount()).toMatchObject({ processed: 1, unprocessed: 0 });
    } finally {
      await worker.close();
      await Promise.all([parents.obliterate({ force: true }), batches.obliterate({ force: true })]);
      await Promise.all([parents.close(), batches.close()]);
    }
  });

  it("keeps a room's stream, seq counter, memory and pick usage in one slot, and runs its append script and expiry", async () => {
    const room = randomUUID();
    expect((await slots([k.roomStream(room), k.roomSeq(room), k.roomMemory(room), k.roomPickUsage(room, 3)])).size).toBe(1);
    const seqs = await appendRoomEvents(redis, k, room, 0, [
      { e: 'human_message', d: { id: 'm1', authorId: 'u', authorName: 'Ada', text: 'hello' } },
      { e: 'human_message', d: { id: 'm2', authorId: 'u', authorName: 'Ada', text: 'again' } },
    ]);
    expect(seqs).toEqual([1, 2]);
    expect((await readRoomMessages(redis, k, room, 1, 3)).map((m) => m.text)).toEqual(['hello', 'again']);
    await expireRoomStream(redis, k, room, 60);
    expect(await redis.ttl(k.roomSeq(room))).toBeGreaterThan(0);
  });

  it('runs the budget scripts (day, month and job keys together) in one slot', async () => {
    const budgets = createBudgets({ db, redis, prefix, log: createLogger('test', 'silent') });
    const owner = randomUUID();
    const jobId = randomUUID();
    const now = new Date().toISOString();
    await budgets.settle({ jobId, ownerId: owner, tokens: 7 });
    // A job never reserved is charged to the owner's current day and month counters (budgets.ts).
    const day = `${prefix}:{budget}:user:${owner}:day:${now.slice(0, 10)}`;
    const month = `${prefix}:{budget}:user:${owner}:month:${now.slice(0, 7)}`;
    expect([await redis.get(day), await redis.get(month)]).toEqual(['7', '7']);
    expect((await slots([day, month, `${prefix}:{budget}:job:${jobId}`])).size).toBe(1);
  });

  it("keeps a model's cache entries, their set and its digest in one slot, and invalidates an old digest there", async () => {
    const cache = new ResponseCache(redis, { prefix, chatTtlS: 60, embedTtlS: 60 });
    const model = 'tiny:1b';
    await cache.noteDigest(model, 'd1');
    await cache.putEmbeddings(model, 'd1', ['a', 'b', 'c'], [[1], [2], [3]]);
    const chatKey = cache.chatKey(model, 'd1', { messages: [{ role: 'user', content: 'hi' }] });
    await cache.putChat(model, 'd1', chatKey, { model, text: 'hello', promptTokens: 1, completionTokens: 1, at: new Date().toISOString() });
    expect(await cache.getEmbeddings(model, 'd1', ['a', 'b', 'c', 'd'])).toEqual([{ v: [1] }, { v: [2] }, { v: [3] }, undefined]);
    const entries = await cache.entriesOf(model, 'd1');
    expect(entries).toHaveLength(4);
    expect((await slots([...entries, chatKey, cache.embedKey(model, 'd2', 'a')])).size).toBe(1);
    // A new digest deletes the old one's entries inside one script.
    expect(await cache.noteDigest(model, 'd2')).toBe(4);
    expect(await cache.getChat(chatKey)).toBeUndefined();
  });
});
