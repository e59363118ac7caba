/**
 * BullMQ queues, one per job family, and the one function that maps a
 * priority class to a BullMQ priority.
 */
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { QueueName, type JobDefinition, type JobEnvelope, type PriorityClass } from '../../shared/index.ts';

/**
 * BullMQ runs lower numbers first, FIFO within a number. Every job gets a
 * number ≥ 1 (0 would bypass priorities). Batch work still progresses: the
 * sweeper promotes a job one class after it has waited `agingMs` in its
 * class (see workers/runtime/sweeper.ts), so no class starves for long.
 */
export function bullPriority(priority: PriorityClass): number {
  switch (priority) {
    case 'interactive':
      return 1;
    case 'normal':
      return 2;
    case 'batch':
      return 3;
  }
}

export function promoted(priority: PriorityClass): PriorityClass | undefined {
  return priority === 'batch' ? 'normal' : priority === 'normal' ? 'interactive' : undefined;
}

export type Queues = Record<QueueName, Queue>;

/**
 * BullMQ's key prefix for one queue: `<prefix>:bull:{<queue>}`, so its keys are
 * `<prefix>:bull:{<queue>}:<queue>:<suffix>`. The hash tag puts every key of a
 * queue in one Redis Cluster slot, as BullMQ's scripts need (they move jobs
 * between the queue's lists and sets atomically); different queues land on
 * different slots. On a single Redis the tag changes nothing.
 */
export function bullPrefix(prefix: string, queue: QueueName): string {
  return `${prefix}:bull:{${slotTag(queue)}}`;
}

/**
 * A queue's hash tag. A job and its children must share a slot (BullMQ moves
 * a parent when its last child ends, in the child's script), so a queue of
 * child jobs takes its parent queue's tag: `code-batch` hashes with `code`.
 */
export function slotTag(queue: QueueName): string {
  return queue === 'code-batch' ? 'code' : queue;
}

export function createQueues(connection: Redis, prefix: string): Queues {
  const out = {} as Queues;
  for (const name of QueueName.options) {
    out[name] = new Queue(name, {
      connection,
      prefix: bullPrefix(prefix, name),
      defaultJobOptions: {
        // Postgres is the record; Redis keeps finished jobs only for the dashboard, bounded by count and age.
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 24 * 3600, count: 1000 },
      },
    });
  }
  return out;
}

export function jobOptions(def: JobDefinition, id: string, priority: PriorityClass): JobsOptions {
  return {
    jobId: id,
    priority: bullPriority(priority),
    attempts: def.defaults.attempts,
    backoff: { type: 'parley' },
  };
}

export async function enqueue(queues: Queues, def: JobDefinition, id: string, envelope: JobEnvelope): Promise<void> {
  await queues[def.queue].add(def.kind, envelope, jobOptions(def, id, envelope.priority));
}

/** Exponential backoff with full jitter: random(0, min(max, base·2^(n-1))). */
export function backoffDelay(def: JobDefinition, attemptsMade: number, random: () => number = Math.random): number {
  const ceiling = Math.min(def.defaults.backoff.maxMs, def.defaults.backoff.baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(random() * ceiling);
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
