/**
 * Benchmark: the memory soak. 20,000 jobs through the API (HTTP) and the
 * workers, 200 SSE streams opened and dropped mid-job, and 50 discussion
 * rooms started and stopped, all in this process; then, after a forced GC,
 * the heap against the warm-up's, Redis keys by family against the
 * warm-up's, and this database's Postgres connections.
 *
 *   node --expose-gc --import tsx bench/memory-soak.ts   (npx tsx works too: the GC is exposed at run time)
 *
 * Env: BENCH_SOAK_JOBS (default 20000), BENCH_SOAK_SSE (200), BENCH_SOAK_ROOMS (50).
 * Target: heap growth < 10 MB; Redis keys back to the warm-up's (job
 * streams gone after their retention; BullMQ keeps at most its bounded
 * number of finished jobs); Postgres connections within the pools' bounds.
 * The baseline is the same process after its warm-up (500 jobs).
 */
import { z } from 'zod';
import { runSoak } from './internal/soak.ts';
import { printVerdicts } from './internal/stats.ts';

const env = z
  .object({
    BENCH_SOAK_JOBS: z.coerce.number().int().min(100).max(1_000_000).default(20_000),
    BENCH_SOAK_SSE: z.coerce.number().int().min(0).max(10_000).default(200),
    BENCH_SOAK_ROOMS: z.coerce.number().int().min(0).max(1000).default(50),
  })
  .parse(process.env);

const r = await runSoak({ jobs: env.BENCH_SOAK_JOBS, sseStreams: env.BENCH_SOAK_SSE, rooms: env.BENCH_SOAK_ROOMS, log: (l) => console.log(l) });
const streamsLeft = r.redisAfter['job streams'] ?? 0;
console.log(
  `${r.jobs.submitted} jobs in ${r.seconds.toFixed(0)} s, ${r.jobs.notCompleted} not completed; job streams left ${streamsLeft}; pg connections ${r.pgConnectionsBefore} → ${r.pgConnectionsAfter}`,
);
printVerdicts('memory soak (after − warm-up)', [
  {
    name: 'heap after a forced GC',
    unit: 'MB',
    better: 'lower',
    baseline: [r.heapBeforeMb],
    parley: [r.heapAfterMb],
    target: 'growth < 10 MB',
    met: (m) => m.parley - m.baseline < 10,
    digits: 1,
  },
  {
    name: 'job stream keys left',
    unit: 'keys',
    better: 'lower',
    baseline: [r.redisBefore['job streams'] ?? 0],
    parley: [streamsLeft],
    target: "none beyond the warm-up's",
    met: (m) => m.parley <= m.baseline,
    digits: 0,
  },
  {
    name: 'Postgres connections',
    unit: 'conns',
    better: 'lower',
    baseline: [r.pgConnectionsBefore],
    parley: [r.pgConnectionsAfter],
    target: `within the pools (<= ${r.pgPoolMax})`,
    met: (m) => m.parley <= r.pgPoolMax,
    digits: 0,
  },
]);
