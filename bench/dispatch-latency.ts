/**
 * Benchmark: dispatch latency, submit → handler start, at a steady rate.
 *
 *   npx tsx bench/dispatch-latency.ts
 *
 * Env: BENCH_PAIRS (default 3), BENCH_RATE jobs/s (default 500),
 * BENCH_SECONDS per run (default 5), BENCH_CONCURRENCY (default: Parley's
 * `system` queue concurrency, 32).
 *
 * Arrivals are open loop (bench/internal/load.ts): every millisecond tick
 * submits whatever is due, never waiting for earlier submits, so a slow
 * submit cannot hide the tail. Latency = handler entered − submit called,
 * both on this process's monotonic clock. Measured A B A B A B after one
 * short unmeasured warm-up of each:
 * - A, the baseline: bare BullMQ `queue.add` (no options) → a `Worker`
 *   whose processor records the time it is entered.
 * - B, Parley: the POST /v1/jobs route's handler without HTTP, i.e.
 *   api/domain/jobs.ts submitJob with the API's own deps (validation, the
 *   Postgres row, BullMQ add with Parley's priority and attempts) →
 *   workers/main.ts startWorkers(env, { queues: ['system'] }) → the
 *   system.ping handler, entered through a wrapper that records the time.
 *   No HTTP: the API edge is bench/submit-http.ts's subject.
 * Submitter and workers share this process on both sides (for Parley: the
 * API from api/main.ts startApi and the workers).
 * Target: Parley p99 <= bare p99 + 5 ms.
 *
 * For Parley the report also splits the latency: submit returned (record +
 * add), picked by BullMQ (the worker's `active` event) and handler entered,
 * so the time before the handler is attributed to the API side, the queue,
 * or the runtime's per-job bookkeeping (markActive, cancel check, stream
 * init).
 */
import { loadavg } from 'node:os';
import { Queue, Worker } from 'bullmq';
import { z } from 'zod';
import { startApi } from '../api/main.ts';
import { connectRedis } from '../platform/connections/index.ts';
import { cpuBetween, type CpuCost, cpuSnapshot, describeCpu, describeMachine } from './internal/cost.ts';
import { openLoop } from './internal/load.ts';
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
import { fmt, printVerdicts, reported, summarize, type LatencySummary } from './internal/stats.ts';

const Env = z.object({
  BENCH_PAIRS: z.coerce.number().int().min(1).max(20).default(3),
  BENCH_RATE: z.coerce.number().min(1).max(20_000).default(500),
  BENCH_SECONDS: z.coerce.number().min(1).max(60).default(5),
  BENCH_CONCURRENCY: z.coerce.number().int().min(1).max(1000).optional(),
});

interface RunResult {
  latency: LatencySummary;
  /** Parley only: where the latency went, as p50/p99 of each step from submit. */
  steps?: { returned: LatencySummary; picked: LatencySummary };
  late: number;
  errors: number;
  cpu: CpuCost;
  jobs: number;
}

/** Times recorded per job key (`<run>:<i>`), on performance.now(). */
class Marks {
  readonly submitted = new Map<string, number>();
  readonly returned = new Map<string, number>();
  readonly picked = new Map<string, number>();
  readonly started = new Map<string, number>();
  private waiter: { n: number; resolve: () => void } | undefined;

  start(key: string): void {
    this.started.set(key, performance.now());
    if (this.waiter && this.started.size >= this.waiter.n) this.waiter.resolve();
  }

  /** Resolves once `n` handlers have started, or rejects after `timeoutMs`. */
  allStarted(n: number, timeoutMs = 60_000): Promise<void> {
    if (this.started.size >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.started.size} of ${n} handlers started within ${timeoutMs} ms`)), timeoutMs);
      this.waiter = { n, resolve: () => (clearTimeout(timer), resolve()) };
    });
  }

  between(from: Map<string, number>, to: Map<string, number>): number[] {
    const out: number[] = [];
    for (const [k, t0] of from) {
      const t1 = to.get(k);
      if (t1 !== undefined) out.push(t1 - t0);
    }
    return out;
  }
}

async function main(): Promise<void> {
  const opts = Env.parse(process.env);
  const prefix = uniquePrefix('dl');
  const env = parleyEnv(prefix, opts.BENCH_CONCURRENCY ? { PARLEY_CONCURRENCY: `system=${opts.BENCH_CONCURRENCY}` } : {});
  const config = configOf(env);
  const concurrency = config.workers.concurrency.system;
  const admin = connectRedis(config.redisUrl, { name: 'bench-admin' });
  const jobsPerRun = Math.round(opts.BENCH_RATE * opts.BENCH_SECONDS);
  console.log(
    `dispatch-latency: ${opts.BENCH_RATE} jobs/s for ${opts.BENCH_SECONDS} s (${jobsPerRun} jobs/run) concurrency=${concurrency} pairs=${opts.BENCH_PAIRS} prefix=${prefix}`,
  );
  console.log(await describeMachine());

  let marks = new Marks();
  const api = await startApi(env);
  const user = await createMember(api);
  const submitParley = submitterOf(api, user);
  const parley = await startParleyWorkers(env, { onHandlerStart: (_id, echo) => echo && marks.start(echo) });
  for (const w of bullWorkersOf(parley.host))
    w.on('active', (job) => marks.picked.set((job.data as { input?: { echo?: string } }).input?.echo ?? '', performance.now()));

  const barePrefix = `${prefix}:bare`;
  const bareConnections = [
    connectRedis(config.redisUrl, { name: 'bench-bare' }),
    connectRedis(config.redisUrl, { blocking: true, name: 'bench-bare-worker' }),
  ] as const;
  const bareQueue = new Queue('system', { connection: bareConnections[0], prefix: barePrefix });
  const bareWorker = new Worker('system', async (job) => marks.start((job.data as { k: string }).k), {
    connection: bareConnections[1],
    prefix: barePrefix,
    concurrency,
  });
  await Promise.all([bareQueue.waitUntilReady(), bareWorker.waitUntilReady()]);

  let run = 0;
  const measure = async (side: 'bare' | 'parley', n: number): Promise<RunResult> => {
    run += 1;
    marks = new Marks();
    const before = await cpuSnapshot(admin);
    const submit = side === 'bare' ? (k: string) => bareQueue.add('ping', { k }) : (k: string) => submitParley({ kind: 'system.ping', input: { echo: k } });
    const { late, errors, firstError } = await openLoop(n, opts.BENCH_RATE, async (i) => {
      const k = `${run}:${i}`;
      marks.submitted.set(k, performance.now());
      await submit(k);
      marks.returned.set(k, performance.now());
    });
    if (errors) throw new Error(`${side}: ${errors} of ${n} submits failed`, { cause: firstError });
    await marks.allStarted(n);
    await drained(side === 'bare' ? bareQueue : api.jobs.queues.system);
    const cpu = cpuBetween(before, await cpuSnapshot(admin));
    return {
      latency: summarize(marks.between(marks.submitted, marks.started)),
      steps:
        side === 'parley'
          ? { returned: summarize(marks.between(marks.submitted, marks.returned)), picked: summarize(marks.between(marks.submitted, marks.picked)) }
          : undefined,
      late,
      errors,
      cpu,
      jobs: n,
    };
  };

  const line = (label: string, r: RunResult) => {
    const l = r.latency;
    let s = `${label} p50 ${fmt(l.p50)} ms  p90 ${fmt(l.p90)} ms  p99 ${fmt(l.p99)} ms  max ${fmt(l.max)} ms  (n=${l.n}${r.errors ? `, ${r.errors} submit errors` : ''}, schedule slip max ${fmt(r.late, 1)} ms, load ${loadavg()[0]!.toFixed(2)})`;
    if (r.steps)
      s += `\n          steps from submit, p50/p99: submit returned ${fmt(r.steps.returned.p50)}/${fmt(r.steps.returned.p99)} ms · picked by BullMQ ${fmt(r.steps.picked.p50)}/${fmt(r.steps.picked.p99)} ms · handler entered ${fmt(l.p50)}/${fmt(l.p99)} ms`;
    return `${s}\n          ${describeCpu(r.cpu, r.jobs)}`;
  };

  const teardown = teardownOnExit(async () => {
    await bareWorker.close();
    await parley.stop();
    await cleanup({ redis: admin, db: api.db, prefixes: [prefix], userIds: [user.id], queues: [bareQueue] });
    await api.stop();
    await bareQueue.close();
    await Promise.all(bareConnections.map((c) => c.quit().catch(() => {})));
    await admin.quit();
  });

  try {
    const warm = Math.round(opts.BENCH_RATE * Math.min(2, opts.BENCH_SECONDS));
    console.log(`warm-up (${warm} jobs each, not counted)`);
    console.log(`  ${line('A bare  ', await measure('bare', warm))}`);
    console.log(`  ${line('B Parley', await measure('parley', warm))}`);

    const a: RunResult[] = [];
    const b: RunResult[] = [];
    for (let p = 0; p < opts.BENCH_PAIRS; p++) {
      a.push(await measure('bare', jobsPerRun));
      console.log(`pair ${p + 1}: ${line('A bare  ', a.at(-1)!)}`);
      b.push(await measure('parley', jobsPerRun));
      console.log(`        ${line('B Parley', b.at(-1)!)}`);
    }

    printVerdicts('dispatch-latency', [
      reported(
        'p50 submit → handler start',
        'ms',
        a.map((r) => r.latency.p50),
        b.map((r) => r.latency.p50),
      ),
      {
        name: 'p99 submit → handler start',
        unit: 'ms',
        better: 'lower',
        baseline: a.map((r) => r.latency.p99),
        parley: b.map((r) => r.latency.p99),
        target: 'Parley p99 <= bare p99 + 5 ms',
        met: (m) => m.parley <= m.baseline + 5,
      },
    ]);
  } finally {
    await teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
