/**
 * Housekeeping that must run somewhere but only once at a time: whichever
 * worker process holds the sweeper lock (platform/connections singleton
 * loop) runs, every `sweepIntervalMs`, the job lifecycle's
 *
 * - aging: a queued job that waited `agingMs` in its class moves up one class
 *   (batch → normal → interactive), so a flood of interactive work delays
 *   batch work but never starves it; never above the best class its owner's
 *   role may ask for (PARLEY_ROLE_CAPS `priorities`), so a member's job stops
 *   at `normal` and never queues ahead of interactive work;
 * - reconciliation: every accepted job ends in a recorded terminal state (see
 *   `reconcile` in platform/jobs/lifecycle.ts).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../platform/config.ts';
import { startSingletonLoop, type SingletonLoop } from '../../platform/connections/index.ts';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import type { Keys } from '../../platform/keys.ts';
import type { Logger } from '../../platform/observability/index.ts';
import { PriorityClass } from '../../shared/index.ts';

export interface SweeperDeps {
  config: Config;
  redis: Redis;
  jobs: JobLifecycle;
  keys: Keys;
  log: Logger;
}

export function startSweeper(deps: SweeperDeps): SingletonLoop<void> {
  const { config, jobs } = deps;
  // The best class each role may ask for (PriorityClass lists them best first): aging's ceiling.
  const ceilings = Object.fromEntries(
    Object.entries(config.roleCaps).map(([role, cap]) => [role, PriorityClass.options.find((p) => cap.priorities.includes(p))]),
  );
  return startSingletonLoop({
    redis: deps.redis,
    lockKey: deps.keys.sweeperLock,
    intervalMs: config.workers.sweepIntervalMs,
    log: deps.log,
    name: 'sweeper',
    round: async () => {
      await jobs.age(config.workers.agingMs, ceilings);
      // A record is stale once it outlived twice the lock: its worker, if any, has lost it.
      await jobs.reconcile(Math.max(config.workers.lockMs * 2, 10_000));
    },
  });
}
