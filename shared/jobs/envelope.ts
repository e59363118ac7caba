import { z } from 'zod';
import { PriorityClass } from '../priority.ts';

/**
 * What a BullMQ job's `data` holds. The BullMQ job id is the job record's id.
 * `input` is validated against the kind's schema for version `v` at pick-up.
 * `requestId` is the X-Request-Id of the API request that submitted (or
 * retried) the job, when there was one: the worker logs it with the job id,
 * so one id follows the job across processes (docs/operations.md). It is
 * optional, so envelopes written before it existed still validate.
 */
export const JobEnvelope = z.object({
  kind: z.string(),
  v: z.number().int(),
  input: z.unknown(),
  ownerId: z.string().nullable(),
  priority: PriorityClass,
  requestId: z.string().max(128).optional(),
});
export type JobEnvelope = z.infer<typeof JobEnvelope>;
