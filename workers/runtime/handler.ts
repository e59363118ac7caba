/**
 * What a handler sees: its validated input and a narrow context. Handlers
 * never touch BullMQ, Redis streams or the pool; the runtime does, and the
 * runtime alone decides whether a failure is retried and why a job stops.
 */
import type { Logger } from '../../platform/observability/index.ts';
import type { InputOf, JobDefinition, JobError, ProgressOf, ResultOf, Usage } from '../../shared/index.ts';

/** Why the runtime aborted a job's signal. */
export type AbortReason =
  /** Cancelled on request: record `cancelled` with the partial output. */
  | 'cancelled'
  /** The worker is shutting down: the job is handed back to the queue, no attempt spent. */
  | 'shutdown'
  /** This attempt no longer owns the job (its lock was lost and another attempt took over): stop, write nothing. */
  | 'superseded';

export interface HandlerContext<P = unknown> {
  jobId: string;
  /** The execution attempt (1, 2, ...), the same number the live events carry. */
  attempt: number;
  /** The job's owner: whose budget it spends, and whose cache entries count as their own (cache.ts). */
  ownerId: string | null;
  /** Aborted with an AbortReason as its reason. Pass it to every upstream call. */
  signal: AbortSignal;
  /** Why `signal` was aborted, once it is. */
  readonly abortReason: AbortReason | undefined;
  /**
   * Whether the runtime will run this job again if the handler fails with
   * `error` now: the error is retryable and attempts are left (hand-backs at
   * shutdown do not spend attempts). A handler that has side effects to undo on
   * a final failure (a discussion turn pausing its room) asks this, rather
   * than counting attempts itself.
   */
  willRetry(error: JobError): boolean;
  progress(p: P): void;
  /** Streams output text to live listeners. `tokens` counts model tokens in `text` (one per Ollama chunk). */
  emitTokens(text: string, tokens?: number): void;
  /** Says which model the job uses and how many prompt tokens it is estimated to read, for partial usage on cancel or failure. */
  meter(m: { model: string; promptTokensEstimate: number }): void;
  /**
   * Records tokens the owner consumed for this attempt outside the job's own metered call (a
   * moderator's pick), fenced like every write of the attempt. False when this attempt no longer owns the job.
   */
  addUsage(ownerId: string, usage: Usage): Promise<boolean>;
  log: Logger;
}

export type Handler<D extends JobDefinition> = (input: InputOf<D>, ctx: HandlerContext<ProgressOf<D>>) => Promise<ResultOf<D>>;

/** A handler for every kind: `satisfies HandlerMap<Jobs>` makes a missing one a type error. */
export type HandlerMap<J extends Record<string, JobDefinition>> = { [K in keyof J]: Handler<J[K]> };

export const CANCELLED: AbortReason = 'cancelled';
export const SHUTDOWN: AbortReason = 'shutdown';
export const SUPERSEDED: AbortReason = 'superseded';
