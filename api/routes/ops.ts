/** Liveness, readiness, metrics and the OpenAPI document. */
import { Liveness, Readiness, ReadinessQuery } from '../../shared/index.ts';
import type { MetricsDeps } from '../domain/metrics.ts';
import { renderMetrics } from '../domain/metrics.ts';
import { checkReadiness, type ReadinessDeps } from '../domain/readiness.ts';
import { problem, route, type Route, type RouteResult } from '../http/route.ts';
import { can } from '../auth/permissions.ts';

export interface OpsDeps extends ReadinessDeps {
  /** What /metrics reports (api/domain/metrics.ts). */
  scrape: MetricsDeps;
  openapi: () => object;
}

export function opsRoutes(deps: OpsDeps): Route[] {
  return [
    route({
      method: 'get',
      path: '/healthz',
      operationId: 'getHealth',
      tags: ['ops'],
      access: 'public',
      summary: 'Liveness: the process answers.',
      responses: { 200: { description: 'Alive', schema: Liveness } },
      async handle() {
        return { status: 200, body: { status: 'ok' } };
      },
    }),
    route({
      method: 'get',
      path: '/readyz',
      operationId: 'getReadiness',
      tags: ['ops'],
      access: 'public',
      summary:
        'Readiness: Redis, Postgres and Ollama each up or down. With `metrics:read` (operators), timings, errors, hosts and models too; `?deep=1` (operators only, at most once per PARLEY_READYZ_DEEP_INTERVAL_S) also runs a system.ping job end to end and leaves no record of it.',
      query: ReadinessQuery,
      responses: {
        200: { description: 'Ready', schema: Readiness },
        401: problem('`deep=1` without credentials (UNAUTHENTICATED)', { 'WWW-Authenticate': { description: 'Bearer' } }),
        403: problem('`deep=1` without the `metrics:read` permission (FORBIDDEN)'),
        429: problem('A deep probe ran less than PARLEY_READYZ_DEEP_INTERVAL_S ago (RATE_LIMITED)', {
          'Retry-After': { description: 'Seconds until the next deep probe may run' },
        }),
        503: {
          description: 'Not ready: some dependency is down',
          schema: Readiness,
          headers: { 'Retry-After': { description: 'Seconds to wait before asking again' } },
        },
      },
      async handle({ query, actor }): Promise<RouteResult> {
        const deep = query.deep === '1' || query.deep === 'true';
        const { ok, body } = await checkReadiness(deps, { deep, detailed: can(actor, 'metrics:read'), authenticated: actor !== undefined });
        return { status: ok ? 200 : 503, body, headers: ok ? undefined : { 'Retry-After': '5' } };
      },
    }),
    route({
      method: 'get',
      path: '/metrics',
      operationId: 'getMetrics',
      tags: ['ops'],
      access: 'metrics:read',
      summary:
        'Prometheus metrics of this API process (each worker process serves its own on PARLEY_WORKER_PORT). PARLEY_METRICS_TOKEN is accepted as a Bearer token here too.',
      responses: { 200: { description: 'Prometheus text format', contentType: 'text/plain' } },
      async handle() {
        const { text, contentType } = await renderMetrics(deps.scrape);
        return { status: 200, body: text, contentType };
      },
    }),
    route({
      method: 'get',
      path: '/openapi.json',
      operationId: 'getOpenApi',
      tags: ['ops'],
      access: 'public',
      summary: 'This API as OpenAPI 3.1, generated from the zod contracts.',
      responses: { 200: { description: 'OpenAPI document' } },
      async handle() {
        return { status: 200, body: deps.openapi() };
      },
    }),
  ];
}
