/**
 * The short memory soak (bench/memory-soak.ts runs the long one): 2,000 jobs
 * through the API and workers, 40 SSE streams dropped mid-job and 5 rooms
 * started and stopped, in this process. Fails on a leak: the heap after a
 * forced GC must stay within 10 MB of the warm-up's, every job must
 * complete, no job stream may outlive its retention, and Postgres
 * connections stay within the pools.
 */
import { describe, expect, it } from 'vitest';
import { runSoak } from '../../bench/internal/soak.ts';

describe('memory soak (short)', () => {
  it('2,000 jobs, dropped streams and stopped rooms leave no heap, key or connection behind', { timeout: 600_000 }, async () => {
    const r = await runSoak({ jobs: 2000, sseStreams: 40, rooms: 5, log: (l) => console.log(l) });
    expect(r.jobs.notCompleted).toBe(0);
    expect(r.heapGrowthMb).toBeLessThan(10);
    expect(r.redisAfter['job streams'] ?? 0).toBeLessThanOrEqual(r.redisBefore['job streams'] ?? 0);
    for (const [family, n] of Object.entries(r.redisAfter)) {
      // Bounded by design: BullMQ keeps at most 1,000 finished jobs per queue; rooms' streams live until their TTL.
      if (family === 'bullmq job hashes' || family === 'bullmq structures' || family === 'stream' || family === 'discussion') continue;
      expect(n, family).toBeLessThanOrEqual((r.redisBefore[family] ?? 0) + 2);
    }
    expect(r.pgConnectionsAfter).toBeLessThanOrEqual(r.pgPoolMax);
  });
});
