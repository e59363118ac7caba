/**
 * Benchmark: POST /v1/jobs over HTTP, submits per second at a fixed number
 * of concurrent connections.
 *
 *   npx tsx bench/submit-http.ts
 *
 * Env: BENCH_PAIRS (default 3), BENCH_REQUESTS per run (default 5000),
 * BENCH_CONNECTIONS (default 50), BENCH_SAMPLE requests in the cost
 * diagnostic (default 1000).
 *
 * Both servers run in this process, one measured at a time; the load comes
 * from a helper process (bench/internal/http-load.ts: node:http keep-alive
 * Agent, BENCH_CONNECTIONS requests always in flight), so the load
 * generator's CPU is not the server's (on 2 cores they still share the
 * machine, equally for both sides). Same body, count and connections on both
 * sides; measured A B A B A B after one unmeasured warm-up of each:
 * - A, the baseline: a minimal Express server, `express.json()` and one
 *   route that calls `queue.add(kind, body)` (bare BullMQ, no options) and
 *   answers 202 with the id. Same Redis.
 * - B, Parley: api/main.ts startApi, the whole edge (request id, metrics,
 *   helmet, CORS, timeouts, body limits, rate limits when mounted, Bearer JWT
 *   auth of a member user) → validation → Postgres record → BullMQ add.
 *   No workers run on either side, so nothing but submitting is measured.
 * The rate limits are raised through the environment
 * (PARLEY_RATE_JOBS_WRITE=member=100000000): the limiter still counts every
 * request in Redis but never answers 429 to the one benchmark user.
 * Target: Parley submits/s >= 0.7 x the minimal server.
 */
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import express from 'express';
import { z } from 'zod';
import { startApi } from '../api/main.ts';
import { connectRedis } from '../platform/connections/index.ts';
import { startHelper } from './internal/child.ts';
import {
  commandStats,
  countQueries,
  countRedisCommands,
  cpuBetween,
  type CpuCost,
  cpuSnapshot,
  describeCommandStats,
  describeCpu,
  describeMachine,
  describeQueries,
  describeRedisCounts,
  otherRedisClients,
} from './internal/cost.ts';
import type { LoadRequest, LoadResult } from './internal/http-load.ts';
import { cleanup, configOf, createMember, parleyEnv, teardownOnExit, uniquePrefix } from './internal/parley.ts';
import { describeProfile, profileCpu } from './internal/profile.ts';
import { fmt, printVerdicts, reported } from './internal/stats.ts';

const Env = z.object({
  BENCH_PAIRS: z.coerce.number().int().min(1).max(20).default(3),
  BENCH_REQUESTS: z.coerce.number().int().min(100).max(200_000).default(5000),
  BENCH_CONNECTIONS: z.coerce.number().int().min(1).max(1000).default(50),
  BENCH_SAMPLE: z.coerce.number().int().min(100).max(20_000).default(1000),
});

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const BODY = JSON.stringify({ kind: 'system.ping', input: { echo: 'hello' } });

/** The baseline: express.json + queue.add, nothing else. */
function minimalServer(queue: Queue): Promise<Server> {
  const app = express();
  app.use(express.json());
  app.post('/v1/jobs', async (req, res) => {
    const body = req.body as { kind?: string };
    const job = await queue.add(body.kind ?? 'job', body);
    res.status(202).json({ id: job.id });
  });
  const server = createServer(app);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main(): Promise<void> {
  const opts = Env.parse(process.env);
  const prefix = uniquePrefix('http');
  const env = parleyEnv(prefix);
  const config = configOf(env);
  const admin = connectRedis(config.redisUrl, { name: 'bench-admin' });
  console.log(`submit-http: requests/run=${opts.BENCH_REQUESTS} connections=${opts.BENCH_CONNECTIONS} pairs=${opts.BENCH_PAIRS} prefix=${prefix}`);
  console.log(await describeMachine());

  const api = await startApi(env);
  const user = await createMember(api);
  const bareConnection = connectRedis(config.redisUrl, { name: 'bench-bare' });
  const bareQueue = new Queue('system', { connection: bareConnection, prefix: `${prefix}:bare` });
  const bare = await minimalServer(bareQueue);
  const urls = { bare: `http://127.0.0.1:${(bare.address() as AddressInfo).port}/v1/jobs`, parley: `http://127.0.0.1:${api.port}/v1/jobs` };
  const loader = await startHelper<LoadRequest, LoadResult>(new URL('./internal/http-load.ts', import.meta.url));
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${user.token}` };

  const run = async (side: 'bare' | 'parley', count: number): Promise<LoadResult & { cpu: CpuCost }> => {
    const before = await cpuSnapshot(admin);
    const r = await loader.call({ url: urls[side], method: 'POST', headers, body: BODY, count, concurrency: opts.BENCH_CONNECTIONS });
    const cpu = cpuBetween(before, await cpuSnapshot(admin));
    const accepted = r.statuses['202'] ?? 0;
    if (accepted !== count)
      throw new Error(`${side}: ${count - accepted} of ${count} submits not accepted: ${JSON.stringify(r.statuses)}; first: ${r.firstFailure}`);
    return { ...r, cpu };
  };
  const line = (label: string, r: LoadResult & { cpu: CpuCost }) =>
    `${label} ${fmt(r.perSecond, 0).padStart(5)} submits/s  p50 ${fmt(r.latency.p50)} ms  p99 ${fmt(r.latency.p99)} ms  max ${fmt(r.latency.max)} ms  (load ${loadavg()[0]!.toFixed(2)})\n          ${describeCpu(r.cpu, r.count, 'submit', [{ label: 'load generator', ms: r.cpuMs }])}`;

  const teardown = teardownOnExit(async () => {
    await loader.close();
    await new Promise<void>((r) => bare.close(() => r()));
    await cleanup({ redis: admin, db: api.db, prefixes: [prefix], userIds: [user.id], queues: [bareQueue, api.jobs.queues.system] });
    await api.stop();
    await bareQueue.close();
    await bareConnection.quit().catch(() => {});
    await admin.quit();
  });

  try {
    const warm = Math.max(200, Math.round(opts.BENCH_REQUESTS / 10));
    console.log(`warm-up (${warm} requests each, not counted)`);
    console.log(`  ${line('A minimal', await run('bare', warm))}`);
    const wp = await run('parley', warm);
    console.log(`  ${line('B Parley ', wp)}`);
    const limited = Object.keys(wp.sampleHeaders).some((h) => h.toLowerCase().startsWith('ratelimit'));
    console.log(
      limited
        ? `  the API's rate limiter is mounted (RateLimit-Policy: ${String(wp.sampleHeaders['ratelimit-policy'])}); limits raised via PARLEY_RATE_JOBS_WRITE, so it counts but never refuses`
        : `  no RateLimit headers on Parley's answers: the rate limiter is not mounted in this build`,
    );

    const a: LoadResult[] = [];
    const b: LoadResult[] = [];
    for (let p = 0; p < opts.BENCH_PAIRS; p++) {
      const ra = await run('bare', opts.BENCH_REQUESTS);
      console.log(`pair ${p + 1}: ${line('A minimal', ra)}`);
      const rb = await run('parley', opts.BENCH_REQUESTS);
      console.log(`        ${line('B Parley ', rb)}   B/A ${fmt(rb.perSecond / ra.perSecond, 3)}`);
      a.push(ra);
      b.push(rb);
    }

    printVerdicts('submit-http', [
      {
        name: 'submits/s (50 connections)',
        unit: '/s',
        better: 'higher',
        baseline: a.map((r) => r.perSecond),
        parley: b.map((r) => r.perSecond),
        digits: 0,
        target: 'Parley >= 0.7 x minimal',
        met: (m) => m.ratio >= 0.7,
      },
      reported(
        'p50 latency',
        'ms',
        a.map((r) => r.latency.p50),
        b.map((r) => r.latency.p50),
      ),
      reported(
        'p99 latency',
        'ms',
        a.map((r) => r.latency.p99),
        b.map((r) => r.latency.p99),
      ),
    ]);

    // ---- where the time goes ----
    const n = opts.BENCH_SAMPLE;
    console.log(
      `\n-- cost per submit (one more run of ${n} requests per side, counters and the CPU profiler on in this (server) process, so slower; Redis shared with ${await otherRedisClients(admin)} other client(s)) --`,
    );
    for (const side of ['bare', 'parley'] as const) {
      const stats0 = await commandStats(admin);
      const redisCount = countRedisCommands();
      const pgCount = countQueries();
      const profile = await profileCpu(root, 500);
      const r = await run(side, n);
      const prof = await profile.stop();
      const counts = redisCount.stop();
      const queries = pgCount.stop();
      const stats1 = await commandStats(admin);
      console.log(`${side === 'bare' ? 'A minimal' : 'B Parley'}: ${fmt(r.perSecond, 0)} submits/s`);
      console.log(`  ${describeCpu(r.cpu, n, 'submit', [{ label: 'load generator', ms: r.cpuMs }])}`);
      for (const l of describeRedisCounts(counts, n, 'submit', ['info'])) console.log(`  ${l}`);
      for (const l of describeCommandStats(stats0, stats1, n, 'submit')) console.log(`  ${l}`);
      if (side === 'parley') for (const l of describeQueries(queries, n, 'submit')) console.log(`  ${l}`);
      for (const l of describeProfile(prof, n, 'submit')) console.log(`  ${l}`);
    }
    const rows = Number(((await api.db('jobs').where({ owner_id: user.id }).count('* as n')) as { n: string }[])[0]!.n);
    console.log(`Parley records written: ${rows} (one per accepted submit)`);
  } finally {
    await teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
