/**
 * Turn and summary jobs go through the job lifecycle like every job: a row in
 * the `jobs` table (owned by the room's owner, so usage and listings see it),
 * then BullMQ. Each is recorded inside the caller's transaction under an id
 * derived from what the job is for, so scheduling the same thing twice yields
 * the one job (on a retry after a crash, or from two racing callers). If the
 * hand-off after the commit is lost, the sweeper's reconciliation hands the
 * recorded job off again.
 */
import type { Knex } from 'knex';
import { discussionSummarize, discussionTurn, type DiscussionSummarizeInput, type DiscussionTurnInput } from '../../shared/index.ts';
import type { JobLifecycle, ScheduledJob } from '../jobs/index.ts';

/** Records the turn job for (room, turn, run), inside the caller's transaction. */
export function recordTurnJob(jobs: JobLifecycle, trx: Knex, room: { id: string; owner_id: string }, turn: number, run: number): Promise<ScheduledJob> {
  const input: DiscussionTurnInput = { discussionId: room.id, turn, run };
  return jobs.record(trx, { def: discussionTurn, key: `discussion:${room.id}:turn:${turn}:run:${run}`, ownerId: room.owner_id, input });
}

/** Records the summary job folding turns 1..upToTurn (outside a transaction, `trx` is the plain connection). */
export function recordSummaryJob(
  jobs: JobLifecycle,
  trx: Knex,
  room: { id: string; owner_id: string },
  upToTurn: number,
  maxTokens: number,
): Promise<ScheduledJob> {
  const input: DiscussionSummarizeInput = { discussionId: room.id, upToTurn, maxTokens };
  return jobs.record(trx, { def: discussionSummarize, key: `discussion:${room.id}:summary:${upToTurn}`, ownerId: room.owner_id, input });
}
