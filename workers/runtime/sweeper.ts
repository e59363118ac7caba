/**
 * Housekeeping that must run somewhere but only once at a time: whichever
 * worker process holds the sweeper lock (platform/connections/singleton-loop.ts) does
 *
 * - aging: a queued job that waited `agingMs` in its class moves up one class
 *   (batch → normal → interactive), so a flood of interactive work delays
 *   batch work but never starves it;
 * - reconciliation: every accepted job ends in a recorded terminal state.
 *   A record left non-terminal is compared with its BullMQ job: missing and
 *   queued → enqueued again (the API died between insert and enqueue);
 *   failed in BullMQ (e.g. stalled too often) → recorded failed; missing while
 *   active → recorded failed as STALLED.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../platform/config.ts';
import type { JobStore } from '../../platform/jobs/index.ts';
import { JobStreamWriter } from '../../platform/streams/index.ts';
import type { Keys } from '../../platform/keys.ts';
import type { Logger } from '../../platform/observability/index.ts';
import { startSingletonLoop, type SingletonLoop } from '../../platform/connections/index.ts';
import { bullPriority, jobOptions, promoted, type Queues } from '../../platform/jobs/index.ts';
import { isJobKind, jobs, QueueName, type JobError, type PriorityClass } from '../../shared/index.ts';

export interface SweeperDeps {
  config: Config;
  redis: Redis;
  queues: Queues;
  store: JobStore;
  keys: Keys;
  log: Logger;
}

export function startSweeper(deps: SweeperDeps): SingletonLoop<void> {
  return startSingletonLoop({
    redis: deps.redis,
    lockKey: deps.keys.sweeperLock,
    intervalMs: deps.config.workers.sweepIntervalMs,
    log: deps.log,
    name: 'sweeper',
    round: async () => {
      await age(deps);
      await reconcile(deps);
    },
  });
}

async function age({ config, queues, store, log }: SweeperDeps): Promise<void> {
  for (const from of ['normal', 'batch'] as PriorityClass[]) {
    const to = promoted(from)!;
    for (const row of await store.agingCandidates(from, config.workers.agingMs, 200)) {
      const queue = QueueName.safeParse(row.queue);
      if (!queue.success) continue;
      const job = await queues[queue.data].getJob(row.id);
      if (!job) continue;
      const state = await job.getState();
      if (state !== 'prioritized' && state !== 'waiting' && state !== 'delayed') continue;
      await job.changePriority({ priority: bullPriority(to) });
      await store.setPriority(row.id, to);
      log.debug({ jobId: row.id, from, to }, 'aged');
    }
  }
}

async function reconcile({ config, redis, queues, store, keys, log }: SweeperDeps): Promise<void> {
  const staleAfter = Math.max(config.workers.lockMs * 2, 10_000);
  for (const row of await store.stale(staleAfter, 200)) {
    const queue = QueueName.safeParse(row.queue);
    if (!queue.success || !isJobKind(row.kind)) continue;
    const job = await queues[queue.data].getJob(row.id);
    const state = job ? await job.getState() : 'missing';
    let error: JobError | undefined;
    if (state === 'missing' && row.state === 'queued') {
      const def = jobs[row.kind];
      await queues[queue.data].add(row.kind, { kind: row.kind, v: row.kind_version, input: row.input, ownerId: row.owner_id, priority: row.priority }, jobOptions(def, row.id, row.priority));
      log.warn({ jobId: row.id }, 'reconciled: re-enqueued a recorded job missing from its queue');
      continue;
    }
    if (state === 'failed') error = { code: 'STALLED', message: job?.failedReason || 'failed in the queue without a recorded outcome' };
    else if (state === 'missing' && row.state === 'active') error = { code: 'STALLED', message: 'job vanished from its queue while active' };
    else if (state === 'completed') error = { code: 'INTERNAL', message: 'queue reports completion without a recorded outcome' };
    if (!error) continue;
    const done = await store.finish(row.id, { state: 'failed', error });
    if (done) {
      const writer = new JobStreamWriter(redis, keys.jobStream(row.id), row.attempts, config.streams);
      await writer.init();
      await writer.finished({ state: 'failed', error, usage: done.usage });
      log.warn({ jobId: row.id, error }, 'reconciled: recorded a terminal state');
    }
  }
}
