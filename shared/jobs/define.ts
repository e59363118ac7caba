/**
 * The shape every job kind shares. A definition is data: the API validates
 * submissions with it, the worker validates again at pick-up, the SDK takes
 * its types and the OpenAPI document is generated from it.
 */
import { z } from 'zod';
import type { PriorityClass } from '../priority.ts';

/**
 * BullMQ queues, one per job family. `code-batch` holds the batches a
 * `code.index` job fans out into: a queue of its own, so an index job waiting
 * for its batches never holds the slot a batch needs.
 */
export const QueueName = z.enum(['llm', 'embed', 'code', 'code-batch', 'system', 'models']);
export type QueueName = z.infer<typeof QueueName>;

export interface JobDefaults {
  priority: PriorityClass;
  /** Executions in all, including the first. */
  attempts: number;
  /** Exponential backoff with full jitter: delay = random(0, min(max, base * 2^(n-1))). */
  backoff: { baseMs: number; maxMs: number };
  /** How long the job's event stream is kept after it ends (PARLEY_STREAM_RETAIN_BY_KIND overrides). @defaultValue PARLEY_STREAM_RETAIN_S */
  streamRetentionS?: number;
}

export interface JobDefinition<K extends string = string, I extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType, P extends z.ZodType = z.ZodType> {
  kind: K;
  /**
   * Payload version. A payload can sit in Redis across a deploy: the worker
   * accepts `v` and the versions listed in `accepts`, and rejects others as
   * unrecoverable (INVALID_PAYLOAD).
   */
  v: number;
  accepts?: readonly number[];
  queue: QueueName;
  input: I;
  result: R;
  progress: P;
  defaults: JobDefaults;
  /** True for kinds that consume LLM tokens and record usage. */
  metered: boolean;
  /**
   * True for an unmetered kind whose submit may reserve token budget (knowledge.extract with its LLM
   * pass): its terminal write settles the reservation against what it consumed on the side.
   */
  reserves?: boolean;
  /** Kinds only the platform itself enqueues (e.g. discussion turns); not accepted by POST /v1/jobs. */
  internal?: boolean;
  /**
   * False for an internal kind whose runs only its scheduler decides (a room's turns and summaries: the
   * room's turn bookkeeping says which job runs next). POST /v1/jobs/:id/retry refuses such a job with 409
   * INVALID_STATE and leaves its record as it ended. Other internal kinds a client started through their own
   * route (code.index, model.pull, …) are retried like submitted ones. @defaultValue true
   */
  clientRetry?: false;
  /**
   * A kind that fans out into child jobs and waits for them (platform/jobs/children.ts): a cancel or a
   * failure of it cancels its children, and it ends only once BullMQ counts none of them pending.
   */
  fansOut?: boolean;
  /** A child kind: the queue its parent lives in. Its jobs are cancelled and retried through their parent only. */
  childOf?: QueueName;
  summary: string;
}

/** `internal` keeps its literal type, so clients can tell at compile time which kinds POST /v1/jobs takes (`PublicJobKind`). */
export function defineJob<K extends string, I extends z.ZodType, R extends z.ZodType, P extends z.ZodType, const X extends boolean = false>(
  def: JobDefinition<K, I, R, P> & { internal?: X },
): JobDefinition<K, I, R, P> & { internal?: X } {
  return def;
}

export type InputOf<D> = D extends JobDefinition<string, infer I, z.ZodType, z.ZodType> ? z.infer<I> : never;
export type ResultOf<D> = D extends JobDefinition<string, z.ZodType, infer R, z.ZodType> ? z.infer<R> : never;
export type ProgressOf<D> = D extends JobDefinition<string, z.ZodType, z.ZodType, infer P> ? z.infer<P> : never;
