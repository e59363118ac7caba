/**
 * Housekeeping that must run somewhere but only once at a time: whichever
 * worker process holds the sweeper lock (platform/connections singleton
 * loop) runs, every `sweepIntervalMs`, the job lifecycle's
 *
 * - aging: a queued job that waited `agingMs` in its class moves up one class
 *   (batch → normal → interactive), so a flood of interactive work delays
 *   batch work but never starves it;
 * - reconciliation: every accepted job ends in a recorded terminal state (see
 *   `reconcile` in platform/jobs/lifecycle.ts).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../platform/config.ts';
import { startSingletonLoop, type SingletonLoop } from '../../platform/connections/index.ts';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import type { Keys } from '../../platform/keys.ts';
import type { Logger } from '../../platform/observability/index.ts';

export interface SweeperDeps {
  config: Config;
  redis: Redis;
  jobs: JobLifecycle;
  keys: Keys;
  log: Logger;
}

export function startSweeper(deps: SweeperDeps): SingletonLoop<void> {
  const { config, jobs } = deps;
  return startSingletonLoop({
    redis: deps.redis,
    lockKey: deps.keys.sweeperLock,
    intervalMs: config.workers.sweepIntervalMs,
    log: deps.log,
    name: 'sweeper',
    round: async () => {
      await jobs.age(config.workers.agingMs);
      // A record is stale once it outlived twice the lock: its worker, if any, has lost it.
      await jobs.reconcile(Math.max(config.workers.lockMs * 2, 10_000));
    },
  });
}
