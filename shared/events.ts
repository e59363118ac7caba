/**
 * The live event catalog, shared by SSE and Socket.IO.
 *
 * Every event of a job stream carries `seq`, a per-job sequence number that
 * strictly increases across attempts. A client that reconnects sends the last
 * `seq` it saw (SSE: Last-Event-ID; Socket.IO: `lastSeq` in `subscribe`) and
 * receives exactly the events after it. `attempt` is the execution attempt
 * that produced the event; `reset` says a new attempt restarts the output, so
 * the client drops the text it has so far.
 *
 * SSE frames: `id: <seq>`, `event: <name>`, `data: <json of the payload>`.
 * Socket.IO: server→client event `<name>` with `{ room, ...payload }`.
 */
import { z } from 'zod';
import { JobError } from './errors.ts';
import { JobState } from './job-api.ts';
import { Usage } from './usage.ts';

export const TokensEvent = z.object({ seq: z.number().int(), attempt: z.number().int(), text: z.string() });
export const ProgressEvent = z.object({ seq: z.number().int(), attempt: z.number().int(), progress: z.unknown() });
export const ResetEvent = z.object({ seq: z.number().int(), attempt: z.number().int() });
export const FinishedEvent = z.object({
  seq: z.number().int(),
  attempt: z.number().int(),
  state: JobState,
  result: z.unknown().optional(),
  error: JobError.optional(),
  usage: Usage.nullable().optional(),
});

export const jobEvents = {
  tokens: TokensEvent,
  progress: ProgressEvent,
  reset: ResetEvent,
  finished: FinishedEvent,
} as const;
export type JobEventName = keyof typeof jobEvents;
export type JobEvent = { [K in JobEventName]: { event: K; data: z.infer<(typeof jobEvents)[K]> } }[JobEventName];

/** Client → server over Socket.IO. The ack answers `{ ok: true }` or `{ ok: false, error: { code, message } }`. */
export const SubscribeRequest = z.object({
  room: z
    .string()
    .regex(/^(job|discussion):[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/)
    .toLowerCase(),
  lastSeq: z.number().int().min(0).optional(),
});
export type SubscribeRequest = z.infer<typeof SubscribeRequest>;

/** A seq as SSE takes it back, in Last-Event-ID or `?lastEventId=` (for clients that cannot set headers). */
export const LastEventId = z.string().regex(/^\d{1,15}$/, 'a sequence number');
/** The Last-Event-ID header: a seq, or empty (the EventSource spec's "no id": start from the beginning). */
export const LastEventIdHeader = z.string().regex(/^(?:\d{1,15})?$/, 'a sequence number, or empty');

/** The query of the SSE endpoints. */
export const EventStreamQuery = z.object({ lastEventId: LastEventId.optional() });
export type EventStreamQuery = z.infer<typeof EventStreamQuery>;

/**
 * One Server-Sent Events frame as a client parses it (the OpenAPI document's schema of an event
 * stream, each frame checked on its own): `id` the seq, `event` one of `names` (or `auth_error` when a
 * credential was withdrawn), `data` the payload as JSON text; a frame may carry only `retry`.
 */
export function sseFrame(names: readonly string[]) {
  return z.object({
    id: z.string().regex(/^\d+$/).optional(),
    event: z.enum(['auth_error', ...names] as unknown as [string, ...string[]]).optional(),
    data: z.string().optional(),
    retry: z.union([z.string(), z.number()]).optional(),
  });
}
