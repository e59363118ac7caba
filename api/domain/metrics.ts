/**
 * What the API's /metrics serves: this process's registry alone, after the
 * gauges that are sampled rather than counted are refreshed. Queue depth
 * (BullMQ), the oldest queued job per queue (the Postgres record), Redis
 * memory (INFO, summed over the masters of a cluster) and rooms per status
 * describe the deployment, not the process, so every API process reports the
 * same values: dashboards take `max` over them, never `sum`.
 */
import type { Cluster, Redis } from 'ioredis';
import type { DiscussionStore } from '../../platform/discussions/index.ts';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import type { ApiMetrics } from '../../platform/observability/index.ts';
import { QueueName } from '../../shared/index.ts';

export interface MetricsDeps {
  metrics: ApiMetrics;
  jobs: Pick<JobLifecycle, 'queueCounts' | 'oldestQueuedAges'>;
  rooms: Pick<DiscussionStore, 'countByStatus'>;
  redis: Redis | Cluster;
  /** Streams the process's hub relays now. */
  watchedStreams: () => number;
}

function infoField(info: string, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

async function redisMemory(redis: Redis | Cluster): Promise<{ used: number; max: number }> {
  const nodes = 'nodes' in redis && typeof redis.nodes === 'function' ? redis.nodes('master') : [redis as Redis];
  const infos = await Promise.all(nodes.map((n) => n.info('memory')));
  return { used: infos.reduce((s, i) => s + infoField(i, 'used_memory'), 0), max: infos.reduce((s, i) => s + infoField(i, 'maxmemory'), 0) };
}

export async function renderMetrics(deps: MetricsDeps): Promise<{ text: string; contentType: string }> {
  const { metrics } = deps;
  const [counts, oldest, memory, rooms] = await Promise.all([
    deps.jobs.queueCounts(),
    deps.jobs.oldestQueuedAges(),
    redisMemory(deps.redis),
    deps.rooms.countByStatus(),
  ]);
  for (const [queue, byState] of Object.entries(counts)) for (const [state, n] of Object.entries(byState)) metrics.queueDepth.set({ queue, state }, n);
  const ages = new Map(oldest.map((r) => [r.queue, Math.max(0, Number(r.age))]));
  for (const queue of QueueName.options) metrics.queueOldestAge.set({ queue }, ages.get(queue) ?? 0);
  metrics.redisMemoryUsed.set(memory.used);
  metrics.redisMemoryMax.set(memory.max);
  metrics.discussionRooms.reset();
  for (const status of ['draft', 'running', 'paused', 'stopped', 'finished']) metrics.discussionRooms.set({ status }, 0);
  for (const r of rooms) metrics.discussionRooms.set({ status: r.status }, Number(r.n));
  metrics.watchedStreams.set(deps.watchedStreams());
  return { text: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
}
