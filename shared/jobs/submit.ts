/**
 * POST /v1/jobs as one discriminated union on `kind`: for each public kind,
 * the envelope with that kind's own input schema. The API validates in two
 * steps (the envelope, then the kind's input, for clearer errors); this
 * union is what the OpenAPI document shows, so generated clients type
 * `input` per kind.
 */
import { z } from 'zod';
import { SubmitJobBody } from '../job-api.ts';
import { jobs, publicJobKinds } from './index.ts';

const variants = publicJobKinds.map((kind) => SubmitJobBody.extend({ kind: z.literal(kind), input: jobs[kind].input }));

export const SubmitJobRequest = z.discriminatedUnion('kind', variants as [(typeof variants)[number], ...(typeof variants)[number][]]);
