/** Path parameters and small bodies that several route groups share. */
import { z } from 'zod';
import { ModelName } from './model-name.ts';

/** `/…/:id` of a job, room, agent, session, key or user. */
export const IdParams = z.object({ id: z.uuid() });
/** `/v1/discussions/:id/compare/:otherId`. */
export const CompareParams = z.object({ id: z.uuid(), otherId: z.uuid() });
/** `/v1/models/:name`. */
export const ModelNameParams = z.object({ name: ModelName });
/** How many sessions a revoke-all ended. */
export const Revoked = z.object({ revoked: z.number() });

/**
 * A moment as a client gives it: an RFC 3339 date-time with its offset. Read as the same instant in
 * UTC (`…Z`), which every store takes the same way: Postgres refuses offsets beyond ±15:59 that RFC
 * 3339 allows (`+22:22`), and answered 500 when one reached it.
 */
export const Instant = z.iso
  .datetime({ offset: true })
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not a date that exists')
  .transform((s) => new Date(s).toISOString());
