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
