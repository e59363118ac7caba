/**
 * The room state machine, shared by the API (start, pause, resume, stop) and
 * the workers (commit a turn, fail, finish, reschedule).
 *
 *   draft ──start──▶ running ──pause──▶ paused ──resume──▶ running
 *                       │   ◀─────────────────────────────┘
 *                       ├── stop (any open state) ──▶ stopped
 *                       └── max turns | token budget | consensus ──▶ finished
 *
 * Every transition is one Postgres transaction that locks the room row
 * (`select … for update`), so it serialises with turn commits: whichever of
 * "commit turn n" and "resume" runs second sees the other's effect, and
 * exactly one of them schedules turn n + 1. The next turn's job row is
 * inserted in the same transaction as the state that calls for it; BullMQ
 * gets it after the commit (and after the room events it must follow).
 */
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { isClosed, type RoomStatus, type TurnStatus, type Usage } from '../../shared/index.ts';
import type { Db } from '../connections/index.ts';
import type { Keys } from '../keys.ts';
import type { Logger } from '../observability/index.ts';
import type { JobLifecycle, ScheduledJob } from '../jobs/index.ts';
import { appendRoomEvent, expireRoomStream } from '../streams/index.ts';
import { recordTurnJob } from './schedule.ts';
import type { DiscussionRow, DiscussionStore } from './store.ts';

export interface RoomDeps {
  db: Db;
  rooms: DiscussionStore;
  redis: Redis;
  keys: Keys;
  /** The job lifecycle: turn jobs are recorded with the room's state and handed off after the commit. */
  jobs: JobLifecycle;
  /** How long a closed room's live stream is kept. */
  streamTtlSeconds: number;
  /** Entries a room's stream keeps (PARLEY_ROOM_STREAM_MAXLEN). @defaultValue ROOM_STREAM_MAXLEN */
  roomStreamMaxLen?: number;
  /** The deployment's Redis key prefix: the watchdog repairs only its own rooms' jobs. */
  keyPrefix: string;
  log: Logger;
}

export type Transition =
  | { ok: true; row: DiscussionRow; before: DiscussionRow }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'invalid_state' | 'limit'; message: string; row: DiscussionRow };

type Decision =
  | { error: string; limit?: true }
  | { update: Partial<Record<keyof DiscussionRow, unknown>>; scheduled?: ScheduledJob; event?: { status: RoomStatus; reason?: string } };

/** The cap on an owner's running rooms, checked where a room starts or resumes. */
export interface RunCap {
  maxRunning: number;
}

/**
 * The owner's cap, inside the transition: the owner's advisory lock, then the count of their running
 * rooms, so starts and resumes of one owner's rooms at once are counted one after another (each
 * transaction's count sees the rooms the ones before it committed).
 */
async function overRunCap(trx: Knex, row: DiscussionRow, cap: RunCap | undefined): Promise<Decision | undefined> {
  if (!cap) return undefined;
  await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`parley.rooms.running:${row.owner_id}`]);
  const counted = (await trx('discussions').where({ owner_id: row.owner_id, status: 'running' }).count({ n: '*' })) as { n: string }[];
  if (Number(counted[0]?.n ?? 0) >= cap.maxRunning)
    return { error: `At most ${cap.maxRunning} discussions of one owner run at once; pause or stop one first`, limit: true };
  return undefined;
}

/** Why the room must finish now, if it must: its turn limit or token budget is reached. */
export function stopCondition(row: Pick<DiscussionRow, 'policy' | 'current_turn' | 'tokens_used'>): string | undefined {
  if (row.current_turn >= row.policy.maxTurns) return `reached the limit of ${row.policy.maxTurns} turns`;
  if (row.policy.tokenBudget !== undefined && row.tokens_used >= row.policy.tokenBudget)
    return `spent its token budget (${row.tokens_used} of ${row.policy.tokenBudget} tokens)`;
  return undefined;
}

/**
 * Appends a `status` event; a closed room's stream then starts to expire, and
 * the room row keeps the closing event's seq (`closed_seq`): viewers resuming
 * after it are told the stream has ended, even once the stream is gone.
 */
export async function announceStatus(
  deps: Pick<RoomDeps, 'redis' | 'keys' | 'streamTtlSeconds' | 'roomStreamMaxLen' | 'rooms'>,
  id: string,
  status: RoomStatus,
  reason?: string | null,
): Promise<number> {
  const seq = await appendRoomEvent(deps.redis, deps.keys, id, 0, 'status', reason ? { status, reason } : { status }, deps.roomStreamMaxLen);
  if (isClosed(status)) {
    await deps.rooms.setClosedSeq(id, seq);
    await expireRoomStream(deps.redis, deps.keys, id, deps.streamTtlSeconds);
  }
  return seq;
}

/** Hands a scheduled job to BullMQ. A failure is logged, not thrown: the sweeper re-enqueues recorded jobs missing from their queue. */
export async function release(deps: Pick<RoomDeps, 'jobs' | 'log'>, job: ScheduledJob | undefined): Promise<void> {
  if (!job) return;
  try {
    await deps.jobs.handOff(job);
  } catch (err) {
    deps.log.warn({ err, jobId: job.id, kind: job.def.kind }, 'enqueue failed; the sweeper will enqueue the recorded job');
  }
}

async function transition(
  deps: RoomDeps,
  id: string,
  decide: (trx: Knex, row: DiscussionRow) => Promise<Decision>,
  opts: { announce?: boolean } = {},
): Promise<Transition> {
  let after: { scheduled?: ScheduledJob; event?: { status: RoomStatus; reason?: string } } = {};
  const result = await deps.db.transaction(async (trx): Promise<Transition> => {
    const row = await deps.rooms.lock(trx, id);
    if (!row) return { ok: false, reason: 'not_found' };
    const d = await decide(trx, row);
    if ('error' in d) return { ok: false, reason: d.limit ? 'limit' : 'invalid_state', message: d.error, row };
    const [updated] = (await trx('discussions')
      .where({ id })
      .update({ ...d.update, updated_at: trx.fn.now() })
      .returning('*')) as DiscussionRow[];
    after = { scheduled: d.scheduled, event: d.event };
    return { ok: true, row: updated!, before: row };
  });
  if (result.ok) {
    if (after.event && opts.announce !== false) await announceStatus(deps, id, after.event.status, after.event.reason);
    await release(deps, after.scheduled);
  }
  return result;
}

export function startRoom(deps: RoomDeps, id: string, cap?: RunCap): Promise<Transition> {
  return transition(deps, id, async (trx, row) => {
    if (row.status !== 'draft') return { error: `The room is ${row.status}; only a draft can start${row.status === 'paused' ? ' (resume it instead)' : ''}` };
    const stop = stopCondition(row);
    if (stop) return { error: `Nothing to run: the room already ${stop}` };
    const over = await overRunCap(trx, row, cap);
    if (over) return over;
    const scheduled = await recordTurnJob(deps.jobs, trx, row, row.current_turn + 1, row.run);
    return { update: { status: 'running', status_reason: null, turn_job_id: scheduled.id, started_at: trx.fn.now() }, scheduled, event: { status: 'running' } };
  });
}

/** The turn in progress finishes and is kept; no further turn starts until resume. */
export function pauseRoom(deps: RoomDeps, id: string, reason = 'paused'): Promise<Transition> {
  return transition(deps, id, async (_trx, row) => {
    if (row.status !== 'running') return { error: `Only a running room can pause; this one is ${row.status}` };
    return { update: { status: 'paused', status_reason: reason }, event: { status: 'paused', reason } };
  });
}

/**
 * Back to running under a new `run`. If no turn is in progress the next one
 * is scheduled here; if one is, its commit schedules the next (it sees
 * `running` because it commits after this transaction).
 */
export function resumeRoom(deps: RoomDeps, id: string, cap?: RunCap): Promise<Transition> {
  return transition(deps, id, async (trx, row) => {
    if (row.status !== 'paused') return { error: `Only a paused room can resume; this one is ${row.status}` };
    const stop = row.speaking ? undefined : stopCondition(row);
    if (stop) return { update: { status: 'finished', status_reason: stop, finished_at: trx.fn.now() }, event: { status: 'finished', reason: stop } };
    const over = await overRunCap(trx, row, cap);
    if (over) return over;
    const run = row.run + 1;
    if (row.speaking) return { update: { status: 'running', status_reason: null, run }, event: { status: 'running' } };
    const scheduled = await recordTurnJob(deps.jobs, trx, row, row.current_turn + 1, run);
    return { update: { status: 'running', status_reason: null, run, turn_job_id: scheduled.id }, scheduled, event: { status: 'running' } };
  });
}

/**
 * Marks the room stopped; nothing new is scheduled or claimed from here. The
 * `status` event is left to the caller, which first interrupts a speaker
 * (the row before says whether one was speaking) so viewers see the partial
 * turn finish before the room closes.
 */
export function stopRoom(deps: RoomDeps, id: string, reason = 'stopped'): Promise<Transition> {
  return transition(
    deps,
    id,
    async (trx, row) => {
      if (isClosed(row.status)) return { error: `The room is already ${row.status}` };
      return { update: { status: 'stopped', status_reason: reason, finished_at: trx.fn.now() }, event: { status: 'stopped', reason } };
    },
    { announce: false },
  );
}

export interface CommitOutcome {
  /** False when the room no longer expected this job's turn (nothing changed). */
  committed: boolean;
  row?: DiscussionRow;
  /** Set when this commit finished the room, with the reason. */
  finished?: string;
  /** The next turn, recorded but not yet enqueued: call `release` after the room events. */
  next?: ScheduledJob;
}

/**
 * What one committed turn adds to its room's `tokens_used`: the speaker's
 * usage and that of the moderator call that picked it. Summaries are not a
 * room's usage (they are the owner's, as any job's).
 */
export function turnTokens(t: { usage: Usage | null; moderatorUsage?: Usage | null }): number {
  const n = (u: Usage | null | undefined) => (u ? u.promptTokens + u.completionTokens : 0);
  return n(t.usage) + n(t.moderatorUsage);
}

/**
 * A room's `tokens_used` after these turns, as the commits added it up: a
 * failed turn pauses the room without a commit (pauseForFailure), so it adds
 * nothing. A fork starts from this figure over the turns it copies.
 */
export function roomTokens(turns: readonly { status: TurnStatus; usage: Usage | null; moderatorUsage?: Usage | null }[]): number {
  return turns.reduce((n, t) => n + (t.status === 'failed' ? 0 : turnTokens(t)), 0);
}

/**
 * Commits turn `turn`: the speaker is released, its tokens (`turnTokens`) are added to the
 * room's total, and either the room finishes (a stop condition or
 * `consensus`) or, while running, turn + 1 is recorded. A paused or stopped
 * room keeps the turn and schedules nothing.
 */
export async function commitTurn(deps: RoomDeps, c: { id: string; turn: number; jobId: string; tokens: number; consensus?: string }): Promise<CommitOutcome> {
  return deps.db.transaction(async (trx): Promise<CommitOutcome> => {
    const row = await deps.rooms.lock(trx, c.id);
    if (!row || row.current_turn !== c.turn || !row.speaking || row.turn_job_id !== c.jobId) return { committed: false, row };
    const tokens = row.tokens_used + c.tokens;
    const update: Record<string, unknown> = { speaking: false, tokens_used: tokens, updated_at: trx.fn.now() };
    let finished: string | undefined;
    let next: ScheduledJob | undefined;
    if (row.status === 'running') {
      finished = c.consensus ?? stopCondition({ ...row, tokens_used: tokens });
      if (finished) Object.assign(update, { status: 'finished', status_reason: finished, finished_at: trx.fn.now() });
      else {
        next = await recordTurnJob(deps.jobs, trx, row, c.turn + 1, row.run);
        update.turn_job_id = next.id;
      }
    }
    const [updated] = (await trx('discussions').where({ id: c.id }).update(update).returning('*')) as DiscussionRow[];
    return { committed: true, row: updated, finished, next };
  });
}

/**
 * A turn that cannot complete (attempts exhausted, or a non-retryable
 * error): the speaker is released and a running room pauses with the reason
 * shown to everyone. Resume continues with the next turn.
 */
export async function pauseForFailure(deps: RoomDeps, c: { id: string; turn: number; jobId: string; reason: string }): Promise<boolean> {
  const res = await deps.db.transaction(async (trx) => {
    const row = await deps.rooms.lock(trx, c.id);
    if (!row || row.turn_job_id !== c.jobId || row.current_turn !== c.turn) return undefined;
    const status: RoomStatus = row.status === 'running' ? 'paused' : row.status;
    await trx('discussions')
      .where({ id: c.id })
      .update({ speaking: false, status, status_reason: isClosed(row.status) ? row.status_reason : c.reason, updated_at: trx.fn.now() });
    return status;
  });
  if (res === 'paused') await announceStatus(deps, c.id, 'paused', c.reason);
  return res !== undefined;
}

/**
 * The moderator declared consensus before turn `turn` was spoken: the claim is released, the room finishes,
 * and `tokens` (the moderator call's usage: no turn commits it) are added to its `tokens_used`. They come after
 * turn `turn` − 1, so a fork from that turn (roomTokens of its turns) does not count them: the fork asks its own.
 */
export async function finishBeforeTurn(deps: RoomDeps, c: { id: string; turn: number; jobId: string; reason: string; tokens: number }): Promise<boolean> {
  const done = await deps.db.transaction(async (trx) => {
    const row = await deps.rooms.lock(trx, c.id);
    if (!row || row.turn_job_id !== c.jobId || row.current_turn !== c.turn || !row.speaking) return false;
    const finish = row.status === 'running';
    await trx('discussions')
      .where({ id: c.id })
      .update({
        current_turn: c.turn - 1,
        speaking: false,
        tokens_used: row.tokens_used + c.tokens,
        ...(finish ? { status: 'finished', status_reason: c.reason, finished_at: trx.fn.now() } : {}),
        updated_at: trx.fn.now(),
      });
    return finish;
  });
  if (done) await announceStatus(deps, c.id, 'finished', c.reason);
  return done;
}

/**
 * The watchdog's repair for a running room whose turn job ended without
 * scheduling a successor (lost enqueue, a job cancelled outside the room):
 * the next turn is scheduled under a new run, or the room finishes if a stop
 * condition holds. Only if the room still points at `expectedJobId`.
 */
export function rescheduleRoom(deps: RoomDeps, id: string, expectedJobId: string | null): Promise<Transition> {
  return transition(deps, id, async (trx, row) => {
    if (row.status !== 'running' || row.speaking || row.turn_job_id !== expectedJobId) return { error: 'the room moved on' };
    const stop = stopCondition(row);
    if (stop) return { update: { status: 'finished', status_reason: stop, finished_at: trx.fn.now() }, event: { status: 'finished', reason: stop } };
    const run = row.run + 1;
    const scheduled = await recordTurnJob(deps.jobs, trx, row, row.current_turn + 1, run);
    return { update: { run, turn_job_id: scheduled.id }, scheduled };
  });
}
