/**
 * Turn and summary jobs go through the same path as every job: a row in the
 * `jobs` table (owned by the room's owner, so usage and listings see it),
 * then BullMQ. Ids are deterministic, derived from what the job is for, and
 * the jobs row carries a matching idempotency key, so scheduling the same
 * thing twice yields the one job (on a retry after a crash, or from two
 * racing callers). If the enqueue after the insert is lost, the sweeper's
 * reconciliation enqueues the recorded job again.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { discussionSummarize, discussionTurn, type DiscussionSummarizeInput, type DiscussionTurnInput, type JobDefinition, type JobEnvelope } from '../../shared/index.ts';
import { createJobStore } from '../jobs/index.ts';
import { enqueue, type Queues } from '../jobs/index.ts';

/** A UUID (version 8, RFC 9562 custom) from a name: the same name, the same id. */
export function namedUuid(name: string): string {
  const b = createHash('sha256').update(name).digest();
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export interface ScheduledJob {
  id: string;
  def: JobDefinition;
  envelope: JobEnvelope;
  /** False when the job had been scheduled before (nothing new was inserted). */
  created: boolean;
}

async function insertJob(q: Knex, keyPrefix: string, def: JobDefinition, key: string, ownerId: string, input: unknown): Promise<ScheduledJob> {
  const id = namedUuid(key);
  const priority = def.defaults.priority;
  const { row, created } = await createJobStore(q, { keyPrefix }).insert({ id, kind: def.kind, v: def.v, queue: def.queue, ownerId, priority, maxAttempts: def.defaults.attempts, input, idempotencyKey: key });
  return { id: row.id, def, envelope: { kind: def.kind, v: def.v, input: row.input, ownerId, priority }, created };
}

/**
 * Records the turn job for (room, turn, run); inside the caller's
 * transaction. `keyPrefix` is the deployment's, as for every job, so its own
 * sweeper reconciles it.
 */
export function insertTurnJob(q: Knex, keyPrefix: string, room: { id: string; owner_id: string }, turn: number, run: number): Promise<ScheduledJob> {
  const input: DiscussionTurnInput = { discussionId: room.id, turn, run };
  return insertJob(q, keyPrefix, discussionTurn, `discussion:${room.id}:turn:${turn}:run:${run}`, room.owner_id, input);
}

export function insertSummaryJob(q: Knex, keyPrefix: string, room: { id: string; owner_id: string }, upToTurn: number, maxTokens: number): Promise<ScheduledJob> {
  const input: DiscussionSummarizeInput = { discussionId: room.id, upToTurn, maxTokens };
  return insertJob(q, keyPrefix, discussionSummarize, `discussion:${room.id}:summary:${upToTurn}`, room.owner_id, input);
}

/** Hands a recorded job to BullMQ; adding an id BullMQ already holds is a no-op there. */
export async function enqueueScheduled(queues: Queues, job: ScheduledJob): Promise<void> {
  await enqueue(queues, job.def, job.id, job.envelope);
}
