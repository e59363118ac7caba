/** The HTTP shapes of the jobs API, shared by the API, its OpenAPI document and the SDK. */
import { z } from 'zod';
import { Instant } from './params.ts';
import { JobError } from './errors.ts';
import { PriorityClass } from './priority.ts';
import { Usage } from './usage.ts';

export const JobState = z.enum(['queued', 'active', 'completed', 'failed', 'cancelled']);
export type JobState = z.infer<typeof JobState>;
export const terminalStates: readonly JobState[] = ['completed', 'failed', 'cancelled'];
export const isTerminal = (s: JobState): boolean => terminalStates.includes(s);

export const IdempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** `input` is checked against the kind's own schema after this envelope passes. */
export const SubmitJobBody = z
  .object({
    kind: z.string().min(1).max(100),
    input: z.unknown(),
    priority: PriorityClass.optional(),
    idempotencyKey: IdempotencyKey.optional(),
  })
  .strict();
export type SubmitJobBody = z.infer<typeof SubmitJobBody>;

export const JobLinks = z.object({ self: z.string(), events: z.string(), cancel: z.string() });

export const SubmittedJob = z.object({
  id: z.uuid().toLowerCase(),
  kind: z.string(),
  state: JobState,
  links: JobLinks,
});
export type SubmittedJob = z.infer<typeof SubmittedJob>;

export const JobView = z.object({
  id: z.uuid().toLowerCase(),
  kind: z.string(),
  state: JobState,
  priority: PriorityClass,
  owner: z.string().nullable(),
  /** The job that fanned out into this one (a code.index job's batches), or null. */
  parentId: z.uuid().toLowerCase().nullable(),
  progress: z.unknown().nullable(),
  result: z.unknown().nullable(),
  error: JobError.nullable(),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  timings: z.object({
    queuedAt: z.iso.datetime(),
    startedAt: z.iso.datetime().nullable(),
    finishedAt: z.iso.datetime().nullable(),
  }),
  usage: Usage.nullable(),
  links: JobLinks,
});
export type JobView = z.infer<typeof JobView>;

export const ListJobsQuery = z.object({
  kind: z.string().max(100).optional(),
  state: JobState.optional(),
  /** ISO timestamps bounding `queuedAt`. */
  since: Instant.optional(),
  until: Instant.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor: z.string().max(200).optional(),
});
export type ListJobsQuery = z.infer<typeof ListJobsQuery>;

/**
 * A job as lists show it: the view without its `result` (GET /v1/jobs/:id has it), and `hasResult`
 * saying whether there is one. A list never loads results, so a page costs the same whatever they hold.
 */
export const JobSummary = JobView.omit({ result: true }).extend({ hasResult: z.boolean() });
export type JobSummary = z.infer<typeof JobSummary>;

export const JobList = z.object({ items: z.array(JobSummary), nextCursor: z.string().nullable() });
export type JobList = z.infer<typeof JobList>;
