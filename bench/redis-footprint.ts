/**
 * Redis footprint of finished jobs: what 1,000 jobs of a kind leave in Redis
 * once they have ended, by key family, and what remains after each family's
 * retention (job streams: `streamRetentionS` of the kind or
 * PARLEY_STREAM_RETAIN_S; BullMQ's finished entries: removeOnComplete).
 *
 *   npx tsx bench/redis-footprint.ts          # BENCH_JOBS (default 1000)
 *
 * The baseline is bare BullMQ: the same number of no-op jobs through a plain
 * Queue and Worker with the same removeOnComplete, measured in the same run.
 * Byte counts are Redis's own `MEMORY USAGE` per key (SAMPLES 0).
 */
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { connectRedis } from '../platform/connections/index.ts';
import { cleanup, configOf, createMember, parleyEnv, startParleyWorkers, submitterOf, teardownOnExit, uniquePrefix } from './internal/parley.ts';
import { startApi } from '../api/main.ts';

const env = z.object({ BENCH_JOBS: z.coerce.number().int().min(10).max(100_000).default(1000) }).parse(process.env);

async function bytesByFamily(redis: Redis, prefix: string): Promise<Record<string, { keys: number; bytes: number }>> {
  const out: Record<string, { keys: number; bytes: number }> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const rest = key.slice(prefix.length + 1);
      const family = familyOf(rest);
      const bytes = Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
      out[family] ??= { keys: 0, bytes: 0 };
      out[family].keys++;
      out[family].bytes += bytes;
    }
  } while (cursor !== '0');
  return out;
}

/** Key families: job streams and their fence hashes, BullMQ's per-job hashes and its per-queue structures, the rest by first segment. */
function familyOf(rest: string): string {
  if (rest.startsWith('stream:job:')) return rest.endsWith(':w') ? 'job stream fence hash' : 'job stream';
  const bull = /^bull:([^:]+):(.+)$/.exec(rest);
  if (bull) return /^[0-9a-f-]{36}(:.*)?$/.test(bull[2]!) ? 'bullmq job hashes' : `bullmq ${bull[2]!.split(':')[0]}`;
  return rest.split(':')[0]!;
}

const total = (f: Record<string, { bytes: number }>) => Object.values(f).reduce((n, x) => n + x.bytes, 0);

async function bare(redis: Redis, n: number): Promise<Record<string, { keys: number; bytes: number }>> {
  const prefix = uniquePrefix('footprint-bare');
  const conn = connectRedis(configOf(process.env).redisUrl, { blocking: true });
  const queue = new Queue('system', { connection: redis, prefix: `${prefix}:bull`, defaultJobOptions: { removeOnComplete: { age: 3600, count: 1000 } } });
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker('system', async () => ({ ok: true }), { connection: conn, prefix: `${prefix}:bull`, concurrency: 32 });
    worker.on('completed', () => {
      if (++done === n) void worker.close().then(() => resolve());
    });
  });
  for (let i = 0; i < n; i += 100)
    await queue.addBulk(Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ name: 'system.ping', data: { echo: `b${i + k}` } })));
  await finished;
  const f = await bytesByFamily(redis, prefix);
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  await conn.quit();
  return f;
}

const prefix = uniquePrefix('footprint');
const pEnv = parleyEnv(prefix);
const api = await startApi(pEnv);
const workers = await startParleyWorkers(pEnv);
const user = await createMember(api);
const teardown = teardownOnExit(async () => {
  await workers.stop();
  await cleanup({ redis: api.redis, db: api.db, prefixes: [prefix], userIds: [user.id] });
  await api.stop();
});
try {
  const submit = submitterOf(api, user);
  const ids: string[] = [];
  for (let i = 0; i < env.BENCH_JOBS; i++) ids.push(await submit({ kind: 'system.ping', input: { echo: `f${i}` } }));
  for (;;) {
    const n = Number((await api.db('jobs').whereIn('id', ids.slice(-500)).whereNot({ state: 'completed' }).count({ n: '*' }).first())?.n ?? 0);
    if (n === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const parley = await bytesByFamily(api.redis, prefix);
  const baseline = await bare(api.redis, env.BENCH_JOBS);
  const per1000 = (b: number) => ((b / env.BENCH_JOBS) * 1000) / 1024;
  console.log(`\n== Redis footprint of ${env.BENCH_JOBS} finished system.ping jobs (KiB per 1000 jobs) ==`);
  for (const [family, f] of Object.entries(parley).sort((a, b) => b[1].bytes - a[1].bytes))
    console.log(`${family.padEnd(28)} ${String(f.keys).padStart(6)} keys  ${per1000(f.bytes).toFixed(1).padStart(9)} KiB`);
  console.log(`${'Parley total'.padEnd(28)} ${''.padStart(6)}       ${per1000(total(parley)).toFixed(1).padStart(9)} KiB`);
  console.log(`${'bare BullMQ total'.padEnd(28)} ${''.padStart(6)}       ${per1000(total(baseline)).toFixed(1).padStart(9)} KiB`);
  const streams = (parley['job stream']?.bytes ?? 0) + (parley['job stream fence hash']?.bytes ?? 0);
  const ttl = await api.redis.ttl(api.keys.jobStream(ids[0]!));
  console.log(
    `job streams are ${((streams / total(parley)) * 100).toFixed(0)}% of it and expire ${ttl} s after the job ends (system.ping's retention); BullMQ keeps at most removeOnComplete.count finished jobs per queue   info`,
  );
} finally {
  await teardown();
}
