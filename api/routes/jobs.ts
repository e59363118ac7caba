import { z } from 'zod';
import { IdempotencyKey, JobList, JobView, ListJobsQuery, Problem, SubmitJobBody, SubmitJobRequest, SubmittedJob } from '../../shared/index.ts';
import { cancelJob, getJob, listJobs, retryJob, submitJob, type JobDeps } from '../domain/jobs.ts';
import { route, type Route, type RouteResult } from '../http/route.ts';

const IdParams = z.object({ id: z.uuid() });
const problem = (description: string) => ({ description, schema: Problem, contentType: 'application/problem+json' });

export function jobRoutes(deps: JobDeps): Route[] {
  return [
    route({
      method: 'post', path: '/v1/jobs', operationId: 'submitJob', tags: ['jobs'], access: 'jobs:submit',
      summary: 'Submit a job. The Idempotency-Key header (or body field) deduplicates retries.',
      body: SubmitJobBody,
      documentedBody: SubmitJobRequest,
      requestHeaders: { 'Idempotency-Key': { description: 'Deduplicates retries: the same key and body return the first job (with Idempotent-Replayed: true); the same key with another body is 409. Also accepted as the body field idempotencyKey.', schema: IdempotencyKey } },
      responses: {
        202: {
          description: 'Accepted', schema: SubmittedJob,
          headers: { Location: { description: 'The job: GET it, or follow links.events' }, 'Idempotent-Replayed': { description: '"true" when this answer replays an earlier submission with the same key' } },
        },
        400: problem('Invalid body or input'), 409: problem('Idempotency key reused with another body'), 503: problem('Not accepted'),
      },
      async handle({ body, actor, headers, requestId }) {
        const { job, replayed } = await submitJob(deps, { actor, body, idempotencyKey: headers.idempotencyKey, requestId });
        return { status: 202, body: job, headers: { Location: job.links.self, ...(replayed ? { 'Idempotent-Replayed': 'true' } : {}) } };
      },
    }),
    route({
      method: 'get', path: '/v1/jobs', operationId: 'listJobs', tags: ['jobs'], access: 'jobs:read',
      summary: 'List jobs from the record, newest first, filtered by kind, state and time.',
      query: ListJobsQuery,
      responses: { 200: { description: 'A page of jobs', schema: JobList } },
      async handle({ query, actor }) {
        return { status: 200, body: await listJobs(deps, actor, query) };
      },
    }),
    route({
      method: 'get', path: '/v1/jobs/:id', operationId: 'getJob', tags: ['jobs'], access: 'jobs:read',
      summary: 'A job: state, progress, result or error, attempts, timings and usage.',
      params: IdParams,
      requestHeaders: { 'If-None-Match': { description: 'An ETag from an earlier answer: 304 while the job has not changed' } },
      responses: {
        200: { description: 'The job', schema: JobView, headers: { ETag: { description: 'A weak validator of the job\'s state, attempts and timings' }, 'Cache-Control': { description: 'private, max-age=60 once terminal; no-cache before' } } },
        304: { description: 'Not modified since the ETag sent in If-None-Match', headers: { ETag: { description: 'The same validator' } } },
        404: problem('No such job, or not yours'),
      },
      async handle({ params, actor, headers }): Promise<RouteResult> {
        const view = await getJob(deps, actor, params.id);
        // Terminal jobs never change: a weak ETag lets clients and caches revalidate cheaply.
        const terminal = view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled';
        const etag = `W/"${view.id}-${view.state}-${view.attempts}-${view.timings.finishedAt ?? view.timings.startedAt ?? view.timings.queuedAt}"`;
        if (headers.ifNoneMatch === etag) return { status: 304, headers: { ETag: etag } };
        return { status: 200, body: view, headers: { ETag: etag, 'Cache-Control': terminal ? 'private, max-age=60' : 'no-cache' } };
      },
    }),
    route({
      method: 'delete', path: '/v1/jobs/:id', operationId: 'cancelJob', tags: ['jobs'], access: 'jobs:cancel',
      summary: 'Cancel a job: a waiting one is removed; an active one is aborted wherever it runs.',
      params: IdParams,
      responses: { 200: { description: 'Cancelled (or still stopping: see state)', schema: JobView }, 404: problem('No such job'), 409: problem('Already finished') },
      async handle({ params, actor, ip, userAgent }) {
        const view = await cancelJob(deps, actor, params.id, { meta: { ip, userAgent } });
        return { status: view.state === 'cancelled' ? 200 : 202, body: view };
      },
    }),
    route({
      method: 'post', path: '/v1/jobs/:id/retry', operationId: 'retryJob', tags: ['jobs'], access: 'jobs:retry',
      summary: 'Run a failed or cancelled job again under the same id.',
      params: IdParams,
      responses: { 202: { description: 'Queued again', schema: JobView }, 404: problem('No such job'), 409: problem('Not failed or cancelled') },
      async handle({ params, actor, ip, userAgent, requestId }) {
        return { status: 202, body: await retryJob(deps, actor, params.id, { ip, userAgent, requestId }) };
      },
    }),
  ];
}
