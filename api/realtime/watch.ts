/**
 * Watching a job's live events, for SSE and Socket.IO alike: checks the
 * actor may see the job, then relays its stream from `afterSeq`. When the
 * stream has expired but the job is finished, the record in Postgres stands
 * in for it with one `finished` event. A client resuming after the stream's
 * `finished` gets `null`: there is nothing more, ever (SSE answers 204, which
 * stops a browser's EventSource from reconnecting in a loop).
 *
 * A seq beyond the stream's last on a live job is read as that last seq, as
 * an open discussion room's is (discussion-watch.ts): a seq never issued
 * cannot have been seen, and a cursor past the `finished` still to come would
 * drop it, leaving the stream open (and its connection slot held) for ever.
 * The stream's end is read from Redis, not only from the record, so a job
 * that finishes between the two reads ends the reader too.
 */
import type { Redis } from 'ioredis';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import type { Keys } from '../../platform/keys.ts';
import { isTerminal, type JobEvent } from '../../shared/index.ts';
import { streamBounds } from '../../platform/streams/index.ts';
import type { Actor } from '../auth/permissions.ts';
import { toView, visibleJob, type JobReaders } from '../domain/jobs.ts';
import type { StreamHub } from '../../platform/streams/index.ts';

export interface WatchDeps {
  jobs: JobLifecycle;
  redis: Redis;
  keys: Keys;
  hub: StreamHub;
  /** Who besides the owner and `jobs:any` may read a job (api/domain/jobs.ts). */
  readers?: JobReaders;
}

export async function watchJob(deps: WatchDeps, actor: Actor, id: string, from: number, fn: (e: JobEvent) => void): Promise<(() => void) | null> {
  const row = await visibleJob(deps, actor, id);
  const key = deps.keys.jobStream(id);
  // Read after the record: a `finished` written since is seen here (the record goes terminal first, then the stream).
  const stream = await streamBounds(deps.redis, key);
  // A job retried by hand: its earlier run ended with a `finished` of its own; readers start after it.
  const afterSeq = Math.max(from, stream.runStart);
  if (stream.finished !== undefined && afterSeq >= stream.finished) return null;
  if (isTerminal(row.state) && (await deps.redis.exists(key)) === 0) {
    const view = toView(row);
    fn({
      event: 'finished',
      data: {
        seq: Math.max(afterSeq + 1, 1),
        attempt: row.attempts,
        state: row.state,
        result: view.result ?? undefined,
        error: view.error ?? undefined,
        usage: view.usage,
      },
    });
    return () => {};
  }
  // Not finished when read: whatever comes next (its `finished` included) has a seq above the last one allocated.
  return deps.hub.subscribe(key, Math.max(stream.runStart, Math.min(afterSeq, stream.last)), fn);
}
