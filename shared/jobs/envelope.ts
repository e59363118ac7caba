import { z } from 'zod';
import { PriorityClass } from '../priority.ts';

/**
 * What a BullMQ job's `data` holds. The BullMQ job id is the job record's id.
 * `input` is validated against the kind's schema for version `v` at pick-up.
 */
export const JobEnvelope = z.object({
  kind: z.string(),
  v: z.number().int(),
  input: z.unknown(),
  ownerId: z.string().nullable(),
  priority: PriorityClass,
});
export type JobEnvelope = z.infer<typeof JobEnvelope>;
