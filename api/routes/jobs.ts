import { IdempotencyKey, JobList, JobView, ListJobsQuery, SubmitJobBody, SubmitJobRequest, SubmittedJob, IdParams } from '../../shared/index.ts';
import { cancelJob, getJob, jobETag, listJobs, retryJob, submitJob, type JobDeps } from '../domain/jobs.ts';
import { noneMatchHits, problem, route, type Route, type RouteResult } from '../http/route.ts';

const cancelSemantics = [
  'Cancelling stops the job; it never deletes it. A waiting job is taken off its queue and recorded `cancelled` at once (200).',
  'An active one is signalled wherever it runs and aborted there; the answer waits up to 5 s for that and is 200 once the record says `cancelled`,',
  'or 202 with the job as it stands while it is still stopping. Either way the record stays: `GET /v1/jobs/{id}` keeps answering, with state',
  '`cancelled`, the `CANCELLED` error and any partial output, and `POST /v1/jobs/{id}/retry` can run it again. A job already finished is 409.',
].join(' ');

const cancelResponses = {
  200: { description: 'Cancelled: the record, which stays readable', schema: JobView },
  202: { description: 'Still stopping: the record as it stands (poll it, or follow its events)', schema: JobView },
  403: problem('A job you may only read (a code.index job of a repository you may read, not yours): FORBIDDEN'),
  404: problem('No such job'),
  409: problem('Already finished (INVALID_STATE)'),
};

/** Cancel is offered as DELETE (what clients expect of a job resource) and as POST …/cancel (what it does); one route each. */
function cancelRoute(deps: JobDeps, method: 'delete' | 'post', path: string, operationId: string, summary: string): Route {
  return route({
    method,
    path,
    operationId,
    tags: ['jobs'],
    access: 'jobs:cancel',
    summary,
    description: cancelSemantics,
    params: IdParams,
    responses: cancelResponses,
    async handle({ params, actor, ip, userAgent }): Promise<RouteResult> {
      const view = await cancelJob(deps, actor, params.id, { meta: { ip, userAgent } });
      return { status: view.state === 'cancelled' ? 200 : 202, body: view };
    },
  });
}

export function jobRoutes(deps: JobDeps): Route[] {
  return [
    route({
      method: 'post',
      path: '/v1/jobs',
      operationId: 'submitJob',
      tags: ['jobs'],
      access: 'jobs:submit',
      summary: 'Submit a job. The Idempotency-Key header (or body field) deduplicates retries.',
      body: SubmitJobBody,
      documentedBody: SubmitJobRequest,
      requestHeaders: {
        'Idempotency-Key': {
          description:
            'Deduplicates retries: the same key and body return the first job (with Idempotent-Replayed: true); the same key with another body is 409. Also accepted as the body field idempotencyKey.',
          schema: IdempotencyKey,
        },
      },
      responses: {
        202: {
          description: 'Accepted',
          schema: SubmittedJob,
          headers: {
            Location: { description: 'The job: GET it, or follow links.events' },
            'Idempotent-Replayed': { description: '"true" when this answer replays an earlier submission with the same key' },
          },
        },
        400: problem('Invalid body or input, or a model that is not installed'),
        409: problem('Idempotency key reused with another body'),
        422: problem(
          "Refused by policy (LIMIT_EXCEEDED, naming the cap and its limit): the role's caps (models, num_predict, num_ctx, prompt size, priority classes, ping holds, concurrent jobs) or the kind's input size",
        ),
        503: problem('Not accepted'),
      },
      async handle({ body, actor, headers, requestId }) {
        const { job, replayed } = await submitJob(deps, { actor, body, idempotencyKey: headers.idempotencyKey, requestId });
        return { status: 202, body: job, headers: { Location: job.links.self, ...(replayed ? { 'Idempotent-Replayed': 'true' } : {}) } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/jobs',
      operationId: 'listJobs',
      tags: ['jobs'],
      access: 'jobs:read',
      summary: 'List jobs from the record, newest first, filtered by kind, state and time.',
      query: ListJobsQuery,
      responses: { 200: { description: 'A page of jobs', schema: JobList } },
      async handle({ query, actor }) {
        return { status: 200, body: await listJobs(deps, actor, query) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/jobs/:id',
      operationId: 'getJob',
      tags: ['jobs'],
      access: 'jobs:read',
      summary: 'A job: state, progress, result or error, attempts, timings and usage.',
      params: IdParams,
      requestHeaders: { 'If-None-Match': { description: 'An ETag from an earlier answer: 304 while the job has not changed' } },
      responses: {
        200: {
          description: 'The job',
          schema: JobView,
          headers: {
            ETag: { description: 'A weak validator of the whole answer: it changes whenever any field of the body does (progress included)' },
            'Cache-Control': { description: 'private, max-age=60 once completed; no-cache before, and for a failed or cancelled job (it may be retried)' },
          },
        },
        304: { description: 'Not modified since the ETag sent in If-None-Match', headers: { ETag: { description: 'The same validator' } } },
        404: problem("No such job, or not yours (a code.index job is also readable by its repository's readers)"),
      },
      async handle({ params, actor, headers }): Promise<RouteResult> {
        const view = await getJob(deps, actor, params.id);
        // A weak ETag lets clients and caches revalidate cheaply; it digests the whole body, so a 304 never hides a change.
        // Only a completed job never changes again: a failed or cancelled one may be retried (here or from the queue board).
        const final = view.state === 'completed';
        const etag = jobETag(view);
        if (noneMatchHits(headers.ifNoneMatch, etag)) return { status: 304, headers: { ETag: etag } };
        return { status: 200, body: view, headers: { ETag: etag, 'Cache-Control': final ? 'private, max-age=60' : 'no-cache' } };
      },
    }),
    cancelRoute(deps, 'delete', '/v1/jobs/:id', 'cancelJob', 'Cancel a job (the same as POST /v1/jobs/{id}/cancel). It does not delete the record.'),
    cancelRoute(
      deps,
      'post',
      '/v1/jobs/:id/cancel',
      'cancelJobByPost',
      'Cancel a job: a waiting one is removed from its queue, an active one is aborted wherever it runs. The record stays readable.',
    ),
    route({
      method: 'post',
      path: '/v1/jobs/:id/retry',
      operationId: 'retryJob',
      tags: ['jobs'],
      access: 'jobs:retry',
      summary: 'Run a failed or cancelled job again under the same id.',
      params: IdParams,
      responses: {
        202: { description: 'Queued again', schema: JobView },
        403: problem('A job you may only read (a code.index job of a repository you may read, not yours): FORBIDDEN'),
        404: problem('No such job'),
        409: problem(
          'Not failed or cancelled; a child job (retried through its parent); or a kind only its discussion runs (discussion.turn, discussion.summarize)',
        ),
        422: problem("Refused by the owner's caps, as at submit (LIMIT_EXCEEDED)"),
      },
      description:
        "A retry runs admission again, for the job's owner: their role's caps, priority classes and token budget (429 BUDGET_EXHAUSTED) apply as at submit.",
      async handle({ params, actor, ip, userAgent, requestId }) {
        return { status: 202, body: await retryJob(deps, actor, params.id, { ip, userAgent, requestId }) };
      },
    }),
  ];
}
