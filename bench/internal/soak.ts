/**
 * The memory soak, shared by bench/memory-soak.ts (20k jobs) and its short
 * version in the test suite (tests/chaos/memory-soak.test.ts): jobs through
 * the real API (HTTP) and workers in this process, SSE streams opened and
 * dropped mid-job, and discussion rooms started and stopped. Measures, after
 * a warm-up and again after the load, with a forced GC each time: this
 * process's heap, the deployment's Redis keys by family, and the Postgres
 * connections of this database.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { startApi } from '../../api/main.ts';
import { startWorkers } from '../../workers/main.ts';
import { cleanup, createMember, parleyEnv, uniquePrefix } from './parley.ts';

export interface SoakOptions {
  jobs: number;
  sseStreams: number;
  rooms: number;
  /** Submits in flight at once. @defaultValue 32 */
  concurrency?: number;
  log?: (line: string) => void;
}

export interface SoakReport {
  heapBeforeMb: number;
  heapAfterMb: number;
  heapGrowthMb: number;
  redisBefore: Record<string, number>;
  redisAfter: Record<string, number>;
  pgConnectionsBefore: number;
  pgConnectionsAfter: number;
  /** Most Postgres connections this process may hold: the API's and the workers' pool sizes. */
  pgPoolMax: number;
  jobs: { submitted: number; completed: number; notCompleted: number };
  seconds: number;
}

function forceGc(): () => void {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
}

/** Redis keys under a prefix, by family: job streams (and fences), BullMQ job hashes, BullMQ's structures, the rest by first segment. */
export async function keyFamilies(redis: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const rest = key.slice(prefix.length + 1);
      let family: string;
      if (rest.startsWith('stream:job:')) family = 'job streams';
      else if (rest.startsWith('{') && rest.includes('stream:job:')) family = 'job streams';
      else if (/^bull:[^:]+:[0-9a-f-]{36}(:|$)/.test(rest) || /^bull:\{[^}]+\}:[0-9a-f-]{36}(:|$)/.test(rest)) family = 'bullmq job hashes';
      else if (rest.startsWith('bull:')) family = 'bullmq structures';
      else family = rest.split(':')[0]!.replace(/\{.*$/, '');
      out[family] = (out[family] ?? 0) + 1;
    }
  } while (cursor !== '0');
  return out;
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => {});
  const gc = forceGc();
  const prefix = uniquePrefix('soak');
  // Streams of finished pings expire after 1 s here, so "back to baseline" can be checked within the run;
  // so do the streams of the jobs the platform runs by itself (vector maintenance at start, a stopped
  // room's transcript feed), whose timing is not the soak's. The vector store is the soak's own, empty.
  const lancedb = mkdtempSync(join(tmpdir(), 'parley-soak-lancedb-'));
  const env = parleyEnv(prefix, {
    PARLEY_STREAM_RETAIN_BY_KIND: 'system.ping=1,discussion.turn=1,vectors.maintain=1,knowledge.extract=1',
    PARLEY_LANCEDB_URI: lancedb,
    PARLEY_RATE_API_WRITE: 'member=100000000',
    PARLEY_RATE_API_READ: 'member=100000000',
  });
  const api = await startApi(env);
  const workers = await startWorkers(env, { queues: ['system', 'llm'] });
  const user = await createMember(api);
  const base = `http://127.0.0.1:${api.port}`;
  const auth = { authorization: `Bearer ${user.token}` };
  const pgConnections = async () => Number((await api.db.raw(`select count(*)::int as n from pg_stat_activity where datname = current_database()`)).rows[0].n);
  const t0 = performance.now();
  let submitted = 0;
  const ids: string[] = [];
  const submit = async (input: unknown) => {
    const r = await fetch(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'system.ping', input }),
    });
    if (r.status !== 202) throw new Error(`submit ${r.status}: ${await r.text()}`);
    submitted++;
    ids.push(((await r.json()) as { id: string }).id);
  };
  const runJobs = async (n: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: opts.concurrency ?? 32 }, async () => {
        while (next < n) {
          next++;
          await submit({ echo: 'soak' });
        }
      }),
    );
  };
  const settle = async () => {
    for (;;) {
      const open = Number((await api.db('jobs').whereIn('state', ['queued', 'active']).andWhere({ owner_id: user.id }).count({ n: '*' }).first())?.n ?? 0);
      if (open === 0) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const measureHeap = async () => {
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    return process.memoryUsage().heapUsed / 2 ** 20;
  };
  try {
    // Warm-up: every code path once, caches and pools filled.
    await runJobs(Math.min(500, opts.jobs));
    await settle();
    const heapBeforeMb = await measureHeap();
    const redisBefore = await keyFamilies(api.redis, prefix);
    const pgConnectionsBefore = await pgConnections();
    log(`warm: heap ${heapBeforeMb.toFixed(1)} MB, redis ${JSON.stringify(redisBefore)}, pg connections ${pgConnectionsBefore}`);

    // SSE streams opened on jobs in flight, then dropped by the client before the job ends.
    const sse = async () => {
      for (let i = 0; i < opts.sseStreams; i++) {
        const r = await fetch(`${base}/v1/jobs`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ kind: 'system.ping', input: { holdMs: 300 } }),
        });
        submitted++;
        const { id } = (await r.json()) as { id: string };
        ids.push(id);
        const ac = new AbortController();
        const res = await fetch(`${base}/v1/jobs/${id}/events`, { headers: auth, signal: ac.signal });
        const reader = res.body!.getReader();
        await reader.read().catch(() => {});
        ac.abort();
      }
    };
    // Rooms started and stopped at once (their first turn is interrupted or skipped).
    const rooms = async () => {
      if (opts.rooms === 0) return;
      const agent = async (name: string) =>
        (
          (await (
            await fetch(`${base}/v1/agents`, {
              method: 'POST',
              headers: { ...auth, 'content-type': 'application/json' },
              body: JSON.stringify({ name, persona: 'Be brief.', params: { num_predict: 4 } }),
            })
          ).json()) as { id: string }
        ).id;
      const a = await agent(`Soak A ${randomUUID().slice(0, 4)}`);
      const b = await agent(`Soak B ${randomUUID().slice(0, 4)}`);
      for (let i = 0; i < opts.rooms; i++) {
        const room = (await (
          await fetch(`${base}/v1/discussions`, {
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json' },
            body: JSON.stringify({ topic: `soak ${i}`, agentIds: [a, b], policy: { maxTurns: 1 } }),
          })
        ).json()) as { id: string };
        await fetch(`${base}/v1/discussions/${room.id}/start`, { method: 'POST', headers: auth });
        await fetch(`${base}/v1/discussions/${room.id}/stop`, { method: 'POST', headers: auth });
      }
    };
    await Promise.all([runJobs(opts.jobs), sse(), rooms()]);
    await settle();
    // Finished pings' streams expire after their 1 s retention; rooms' after the stream TTL (they are counted apart).
    await new Promise((r) => setTimeout(r, 2500));
    const heapAfterMb = await measureHeap();
    const redisAfter = await keyFamilies(api.redis, prefix);
    const pgConnectionsAfter = await pgConnections();
    const completed = Number((await api.db('jobs').whereIn('id', ids).andWhere({ state: 'completed' }).count({ n: '*' }).first())?.n ?? 0);
    const report: SoakReport = {
      heapBeforeMb,
      heapAfterMb,
      heapGrowthMb: heapAfterMb - heapBeforeMb,
      redisBefore,
      redisAfter,
      pgConnectionsBefore,
      pgConnectionsAfter,
      pgPoolMax: 20 + 64,
      jobs: { submitted, completed, notCompleted: submitted - completed },
      seconds: (performance.now() - t0) / 1000,
    };
    log(
      `after: heap ${heapAfterMb.toFixed(1)} MB (${report.heapGrowthMb >= 0 ? '+' : ''}${report.heapGrowthMb.toFixed(1)} MB), redis ${JSON.stringify(redisAfter)}, pg connections ${pgConnectionsAfter}`,
    );
    return report;
  } finally {
    await workers.stop();
    await cleanup({ redis: api.redis, db: api.db, prefixes: [prefix], userIds: [user.id] });
    await api.stop();
    rmSync(lancedb, { recursive: true, force: true });
  }
}
