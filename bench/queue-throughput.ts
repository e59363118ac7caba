/**
 * Benchmark: the worker side, queue → worker → handler → bookkeeping.
 *
 *   npx tsx bench/queue-throughput.ts
 *
 * Env: BENCH_PAIRS (default 3), BENCH_JOBS per run (default 5000),
 * BENCH_CONCURRENCY (default: Parley's `system` queue concurrency, 32),
 * BENCH_SAMPLE jobs in the cost diagnostic (default 1000),
 * BENCH_WHATIF_ASYNC_COMMIT=1 (a what-if, not the product: the workers'
 * Postgres sessions commit with synchronous_commit=off).
 *
 * Each run fills a paused queue with BENCH_JOBS jobs (not timed), then times
 * resume → queue empty (nothing waiting, prioritized or active; polled every
 * 5 ms). Measured A B A B A B after one unmeasured warm-up of each:
 * - A, the baseline: bare BullMQ. `queue.addBulk` of {i} jobs with no options;
 *   a `Worker` whose processor is an empty async function.
 * - B, Parley: system.ping jobs created through the domain path (the POST
 *   /v1/jobs route's handler without HTTP, i.e. api/domain/jobs.ts
 *   submitJob with the API's own deps: validation, the Postgres row, BullMQ
 *   add with Parley's options) while the queue is paused, then run by
 *   workers/main.ts startWorkers(env, { queues: ['system'] }): re-validation,
 *   markActive, cancel check, stream init, the handler, result validation,
 *   the conditional terminal write and the `finished` stream event.
 * Same Redis, same concurrency, one process for both sides and for the API
 * that creates Parley's jobs (the fill is not timed, and the API is idle
 * while the queue drains).
 * Target: B >= 0.8 x A.
 *
 * Afterwards one more small run of each side with counters and the CPU
 * profiler on prints where the time goes: CPU per job in this process, Redis
 * and Postgres; Redis commands and round trips per job (client side) and
 * command time (server side); Postgres queries per job with their times; the
 * serial commit time of this disk; per-job stage times inside the runtime;
 * the profile by package.
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { z } from 'zod';
import { startApi } from '../api/main.ts';
import { connectRedis } from '../platform/connections/index.ts';
import {
  commandStats,
  commitLatency,
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
import { closedLoop } from './internal/load.ts';
import { describeProfile, profileCpu } from './internal/profile.ts';
import {
  bullWorkersOf,
  cleanup,
  configOf,
  createMember,
  drained,
  parleyEnv,
  startParleyWorkers,
  submitterOf,
  teardownOnExit,
  uniquePrefix,
} from './internal/parley.ts';
import { fmt, printVerdicts, summarize } from './internal/stats.ts';

const Env = z.object({
  BENCH_PAIRS: z.coerce.number().int().min(1).max(20).default(3),
  BENCH_JOBS: z.coerce.number().int().min(100).max(200_000).default(5000),
  BENCH_CONCURRENCY: z.coerce.number().int().min(1).max(1000).optional(),
  BENCH_SAMPLE: z.coerce.number().int().min(100).max(20_000).default(1000),
  /** What-if, off by default: the workers' Postgres sessions commit asynchronously (synchronous_commit=off). Not the product as shipped. */
  BENCH_WHATIF_ASYNC_COMMIT: z.enum(['0', '1']).default('0'),
});

/** The queue-state polling of `drained()`, left out of the per-job command counts. */
const POLLING = ['lua getCounts'];
const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

async function main(): Promise<void> {
  const opts = Env.parse(process.env);
  const prefix = uniquePrefix('qt');
  const env = parleyEnv(prefix, opts.BENCH_CONCURRENCY ? { PARLEY_CONCURRENCY: `system=${opts.BENCH_CONCURRENCY}` } : {});
  const config = configOf(env);
  const concurrency = config.workers.concurrency.system;
  const admin = connectRedis(config.redisUrl, { name: 'bench-admin' });
  console.log(`queue-throughput: jobs/run=${opts.BENCH_JOBS} concurrency=${concurrency} pairs=${opts.BENCH_PAIRS} prefix=${prefix}`);
  console.log(await describeMachine());
  console.log(`redis=${config.redisUrl} postgres=${config.databaseUrl}`);

  const api = await startApi(env);
  const user = await createMember(api);
  const submit = submitterOf(api, user);
  const asyncCommit = opts.BENCH_WHATIF_ASYNC_COMMIT === '1';
  if (asyncCommit) console.log('WHAT-IF (not the product as shipped): the workers commit with synchronous_commit=off');
  const workerEnv = asyncCommit
    ? { ...env, DATABASE_URL: `${config.databaseUrl}${config.databaseUrl.includes('?') ? '&' : '?'}options=-c%20synchronous_commit%3Doff` }
    : env;
  // Per-job stage times, recorded only during the cost diagnostic.
  let trace: { picked: Map<string, number>; handler: Map<string, number>; completed: Map<string, number> } | undefined;
  const parley = await startParleyWorkers(workerEnv, { onHandlerStart: (id) => trace?.handler.set(id, performance.now()) });
  for (const w of bullWorkersOf(parley.host)) {
    w.on('active', (job) => trace?.picked.set(job.id!, performance.now()));
    w.on('completed', (job) => trace?.completed.set(job.id!, performance.now()));
  }
  const parleyQueue = api.jobs.queues.system;

  const barePrefix = `${prefix}:bare`;
  const bareConnections = [
    connectRedis(config.redisUrl, { name: 'bench-bare' }),
    connectRedis(config.redisUrl, { blocking: true, name: 'bench-bare-worker' }),
  ] as const;
  const bareQueue = new Queue('system', { connection: bareConnections[0], prefix: barePrefix });
  const bareWorker = new Worker('system', async () => {}, { connection: bareConnections[1], prefix: barePrefix, concurrency });
  await Promise.all([bareQueue.waitUntilReady(), bareWorker.waitUntilReady()]);

  const fillBare = async (n: number) => {
    await bareQueue.pause();
    for (let i = 0; i < n; i += 1000) await bareQueue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ name: 'ping', data: { i: i + j } })));
  };
  const fillParley = async (n: number) => {
    await parleyQueue.pause();
    await closedLoop(n, 32, (i) => submit({ kind: 'system.ping', input: { echo: String(i) } }));
  };

  /** Resume → empty; returns jobs/s and what it cost. */
  const drain = async (queue: Queue, n: number): Promise<{ rate: number; cpu: CpuCost }> => {
    const before = await cpuSnapshot(admin);
    const t0 = performance.now();
    await queue.resume();
    const t1 = await drained(queue);
    const cpu = cpuBetween(before, await cpuSnapshot(admin));
    return { rate: n / ((t1 - t0) / 1000), cpu };
  };

  const runBare = async (n: number) => {
    await fillBare(n);
    return drain(bareQueue, n);
  };
  let parleyJobs = 0;
  const runParley = async (n: number) => {
    await fillParley(n);
    const r = await drain(parleyQueue, n);
    parleyJobs += n;
    return r;
  };

  const line = (side: string, r: { rate: number; cpu: CpuCost }, n: number) =>
    `${side} ${fmt(r.rate, 0).padStart(6)} jobs/s  (load ${loadavg()[0]!.toFixed(2)})  ${describeCpu(r.cpu, n)}`;

  const userIds = [user.id];
  const teardown = teardownOnExit(async () => {
    await bareWorker.close();
    await parley.stop();
    await cleanup({ redis: admin, db: api.db, prefixes: [prefix], userIds, queues: [bareQueue] });
    await api.stop();
    await bareQueue.close();
    await Promise.all(bareConnections.map((c) => c.quit().catch(() => {})));
    await admin.quit();
  });

  try {
    const warm = Math.max(200, Math.round(opts.BENCH_JOBS / 5));
    console.log(`warm-up (${warm} jobs each, not counted)`);
    console.log(`  ${line('A bare  ', await runBare(warm), warm)}`);
    console.log(`  ${line('B Parley', await runParley(warm), warm)}`);

    const a: number[] = [];
    const b: number[] = [];
    for (let p = 0; p < opts.BENCH_PAIRS; p++) {
      const ra = await runBare(opts.BENCH_JOBS);
      console.log(`pair ${p + 1}: ${line('A bare  ', ra, opts.BENCH_JOBS)}`);
      const rb = await runParley(opts.BENCH_JOBS);
      console.log(`        ${line('B Parley', rb, opts.BENCH_JOBS)}   B/A ${fmt(rb.rate / ra.rate, 3)}`);
      a.push(ra.rate);
      b.push(rb.rate);
    }

    // Every Parley job must have ended completed in the record.
    const states = (await api.db('jobs').where({ owner_id: user.id }).select('state').count('* as n').groupBy('state')) as {
      state: string;
      n: number | string;
    }[];
    const byState = Object.fromEntries(states.map((s) => [s.state, Number(s.n)]));
    console.log(`Parley records: ${JSON.stringify(byState)} (expected ${parleyJobs} completed)`);

    printVerdicts('queue-throughput', [
      {
        name: 'jobs/s (queue → handler → done)',
        unit: 'jobs/s',
        better: 'higher',
        baseline: a,
        parley: b,
        digits: 0,
        target: 'Parley >= 0.8 x bare',
        met: (m) => m.ratio >= 0.8,
      },
    ]);

    // ---- where the time goes ----
    const n = opts.BENCH_SAMPLE;
    console.log(
      `\n-- cost per job (one more run of ${n} jobs per side, counters and the CPU profiler on, so slower; Redis server shared with ${await otherRedisClients(admin)} other client(s)) --`,
    );
    for (const side of ['A bare', 'B Parley'] as const) {
      const isParley = side === 'B Parley';
      if (isParley) await fillParley(n);
      else await fillBare(n);
      const stats0 = await commandStats(admin);
      const redisCount = countRedisCommands();
      const pgCount = countQueries();
      const profile = await profileCpu(root);
      if (isParley) trace = { picked: new Map(), handler: new Map(), completed: new Map() };
      const r = await drain(isParley ? parleyQueue : bareQueue, n);
      const prof = await profile.stop();
      const stages = trace;
      trace = undefined;
      const counts = redisCount.stop();
      const queries = pgCount.stop();
      const stats1 = await commandStats(admin);
      console.log(`${side}: ${fmt(r.rate, 0)} jobs/s`);
      console.log(`  ${describeCpu(r.cpu, n)}`);
      for (const l of describeRedisCounts(counts, n, 'job', POLLING)) console.log(`  ${l}`);
      for (const l of describeCommandStats(stats0, stats1, n)) console.log(`  ${l}`);
      if (isParley) {
        for (const l of describeQueries(queries, n)) console.log(`  ${l}`);
        const any = (await api.db('jobs').where({ owner_id: user.id }).first('id')) as { id: string };
        const c = await commitLatency(api.db, any.id);
        console.log(`  Postgres, one-row UPDATE + commit alone, serially: p50 ${fmt(c.p50)} ms p99 ${fmt(c.p99)} ms (the disk's WAL flush)`);
        if (stages) {
          const span = (from: Map<string, number>, to: Map<string, number>) => summarize([...from].flatMap(([id, t]) => (to.has(id) ? [to.get(id)! - t] : [])));
          const pre = span(stages.picked, stages.handler);
          const post = span(stages.handler, stages.completed);
          console.log(
            `  one job inside the runtime at concurrency ${concurrency}, p50/p99: picked → handler entered ${fmt(pre.p50)}/${fmt(pre.p99)} ms (envelope + input validation, markActive, cancel check, stream init)`,
          );
          console.log(
            `                                            handler entered → completed ${fmt(post.p50)}/${fmt(post.p99)} ms (handler, result validation, terminal write, finished event, BullMQ moveToFinished)`,
          );
          console.log(`    (Little's law: ${concurrency} in flight / ${fmt(r.rate, 0)} jobs/s = ${fmt((concurrency / r.rate) * 1000, 1)} ms per job)`);
        }
      }
      for (const l of describeProfile(prof, n)) console.log(`  ${l}`);
    }
  } finally {
    await teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
