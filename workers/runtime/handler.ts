/**
 * What a handler sees: its validated input and a narrow context. Handlers
 * never touch BullMQ, Redis streams or the pool; the runtime does.
 */
import type { Logger } from '../../platform/observability/index.ts';
import type { InputOf, JobDefinition, ProgressOf, ResultOf } from '../../shared/index.ts';

export interface HandlerContext<P = unknown> {
  jobId: string;
  /** The execution attempt (1, 2, ...), the same number the live events carry. */
  attempt: number;
  /** Aborted on cancel (reason "cancelled") or shutdown (reason "shutdown"). Pass it to every upstream call. */
  signal: AbortSignal;
  progress(p: P): void;
  /** Streams output text to live listeners. `tokens` counts model tokens in `text` (one per Ollama chunk). */
  emitTokens(text: string, tokens?: number): void;
  /** Says which model the job uses and how many prompt tokens it is estimated to read, for partial usage on cancel or failure. */
  meter(m: { model: string; promptTokensEstimate: number }): void;
  log: Logger;
}

export type Handler<D extends JobDefinition> = (input: InputOf<D>, ctx: HandlerContext<ProgressOf<D>>) => Promise<ResultOf<D>>;

/** A handler for every kind: `satisfies HandlerMap<Jobs>` makes a missing one a type error. */
export type HandlerMap<J extends Record<string, JobDefinition>> = { [K in keyof J]: Handler<J[K]> };

export const CANCELLED = 'cancelled';
export const SHUTDOWN = 'shutdown';
