/**
 * Types derived from the zod contracts in shared/: nothing here is written
 * twice. A job kind's input is what you send (defaults optional, `z.input`),
 * its result what comes back (`z.output`).
 */
import type { z } from 'zod';
import type { JobEvent, JobKind, Jobs, PublicJobKind, RoomEvent } from '../shared/index.ts';

export type JobInput<K extends JobKind> = z.input<Jobs[K]['input']>;
export type JobResult<K extends JobKind> = z.output<Jobs[K]['result']>;
export type JobProgress<K extends JobKind> = z.output<Jobs[K]['progress']>;
export type { JobEvent, RoomEvent, PublicJobKind };

/** One event of the catalog, by name: `EventOf<JobEvent, 'tokens'>['data']` is `{ seq, attempt, text }`. */
export type EventOf<E extends { event: string }, N extends E['event']> = Extract<E, { event: N }>;

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the request (and any retry wait): the call rejects with ParleyError `ABORTED`. */
  signal?: AbortSignal | undefined;
}

/** How live events travel. @defaultValue 'sse' */
export type StreamTransport = 'sse' | 'socket.io';
