/**
 * A room never silently stalls. Normally each turn's commit schedules the
 * next, in the same transaction; this catches what that cannot: a turn job
 * that ended without committing (the sweeper failed it as STALLED, someone
 * cancelled it through the jobs API while it waited, a worker died between
 * steps) and a next turn that was never recorded.
 *
 * Whichever worker process holds the watchdog lock (platform/connections/singleton-loop.ts)
 * looks at running rooms untouched for `staleMs` whose current turn
 * job is one of this deployment's (same key prefix) and terminal:
 *   - a turn still marked speaking → the room pauses with the reason shown;
 *   - no turn in progress → the next turn is scheduled under a new run (or
 *     the room finishes if a stop condition holds).
 * Queued and active turn jobs are left alone: long generations are normal,
 * and recorded jobs missing from BullMQ are the sweeper's to re-enqueue.
 */
import { pauseForFailure, rescheduleRoom } from '../../platform/discussions/index.ts';
import { startSingletonLoop, type SingletonLoop } from '../../platform/connections/index.ts';
import { isTerminal } from '../../shared/index.ts';
import type { DiscussionRuntime } from './runtime.ts';

export interface WatchdogOptions {
  intervalMs: number;
  /** A running room must be this quiet before it is checked. @defaultValue 10 s */
  staleMs?: number;
}

export function startRoomWatchdog(rt: DiscussionRuntime, opts: WatchdogOptions): SingletonLoop<number> {
  const staleMs = opts.staleMs ?? 10_000;

  /** Returns how many rooms it repaired. */
  const round = async (): Promise<number> => {
    let repaired = 0;
    for (const room of await rt.rooms.quiet(staleMs, 100, rt.keyPrefix)) {
      const job = await rt.jobs.get(room.turn_job_id!);
      if (!job || !isTerminal(job.state)) continue;
      if (room.speaking) {
        const why = `its job ${job.state}${job.error_message ? `: ${job.error_message}` : ''}`;
        const reason = `turn ${room.current_turn} ended without being committed (${why})`;
        if (await pauseForFailure(rt, { id: room.id, turn: room.current_turn, jobId: room.turn_job_id ?? '', reason })) {
          rt.log.warn({ discussionId: room.id, reason }, 'watchdog paused a stalled room');
          repaired += 1;
        }
      } else {
        const res = await rescheduleRoom(rt, room.id, room.turn_job_id);
        if (res.ok) {
          rt.log.warn({ discussionId: room.id, status: res.row.status, turn: res.row.current_turn + 1 }, 'watchdog rescheduled a stalled room');
          repaired += 1;
        }
      }
    }
    return repaired;
  };

  return startSingletonLoop({
    redis: rt.redis,
    lockKey: rt.keys.roomWatchdogLock,
    intervalMs: opts.intervalMs,
    log: rt.log,
    name: 'discussion watchdog',
    round,
  });
}
