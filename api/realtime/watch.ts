/**
 * Watching a job's live events, for SSE and Socket.IO alike: checks the
 * actor may see the job, then relays its stream from `afterSeq`. When the
 * stream has expired but the job is finished, the record in Postgres stands
 * in for it with one `finished` event.
 */
import type { Redis } from 'ioredis';
import type { JobStore } from '../../platform/jobs/index.ts';
import type { Keys } from '../../platform/keys.ts';
import { isTerminal, type JobEvent } from '../../shared/index.ts';
import type { Actor } from '../auth/permissions.ts';
import { toView, visibleJob } from '../domain/jobs.ts';
import type { StreamHub } from './hub.ts';

export interface WatchDeps {
  store: JobStore;
  redis: Redis;
  keys: Keys;
  hub: StreamHub;
}

export async function watchJob(deps: WatchDeps, actor: Actor, id: string, afterSeq: number, fn: (e: JobEvent) => void): Promise<() => void> {
  const row = await visibleJob(deps, actor, id);
  const key = deps.keys.jobStream(id);
  if (isTerminal(row.state) && (await deps.redis.exists(key)) === 0) {
    const view = toView(row);
    fn({ event: 'finished', data: { seq: Math.max(afterSeq + 1, 1), attempt: row.attempts, state: row.state, result: view.result ?? undefined, error: view.error ?? undefined, usage: view.usage } });
    return () => {};
  }
  return deps.hub.subscribe(key, afterSeq, fn);
}
