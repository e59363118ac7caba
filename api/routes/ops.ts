/** Liveness, readiness, metrics and the OpenAPI document. */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Db } from '../../platform/connections/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { MetricsDeps } from '../domain/metrics.ts';
import { renderMetrics } from '../domain/metrics.ts';
import { route, type Route, type RouteResult } from '../http/route.ts';
import { AppError } from '../http/app-error.ts';
import { can } from '../auth/permissions.ts';
import type { ProbeOutcome } from '../domain/probe.ts';
import { Problem } from '../../shared/index.ts';

export interface OpsDeps {
  redis: Redis;
  db: Db;
  ollama: OllamaClient;
  /** What /metrics reports (api/domain/metrics.ts). */
  scrape: MetricsDeps;
  /** Submits a system.ping and waits for it (api/domain/probe.ts); the deep readiness check, for operators. */
  deepProbe?: () => Promise<ProbeOutcome>;
  /** Extra readiness detail (e.g. per-model availability), for operators. */
  extraReadiness?: () => Promise<Record<string, unknown>>;
  openapi: () => object;
}

const Check = z.object({ ok: z.boolean(), ms: z.number().optional(), detail: z.string().optional() });
const Readiness = z.object({
  status: z.enum(['ready', 'degraded']),
  /** Anonymous callers and callers without `metrics:read` see only `ok` per dependency. */
  checks: z.record(z.string(), Check),
  ollamaHosts: z.array(z.object({ host: z.string(), up: z.boolean() })).optional(),
  models: z.array(z.object({ model: z.string(), installed: z.boolean(), loaded: z.boolean(), loadedOn: z.array(z.string()) })).optional(),
});
const ReadinessQuery = z.object({ deep: z.enum(['0', '1', 'true', 'false']).optional() });
const problem = (description: string, headers?: Record<string, { description: string }>) => ({ description, schema: Problem, contentType: 'application/problem+json', ...(headers ? { headers } : {}) });

async function timed(fn: () => Promise<unknown>, timeoutMs = 1000): Promise<z.infer<typeof Check>> {
  const t0 = performance.now();
  try {
    await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs))]);
    return { ok: true, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return { ok: false, ms: Math.round(performance.now() - t0), detail: err instanceof Error ? err.message : String(err) };
  }
}

export function opsRoutes(deps: OpsDeps): Route[] {
  return [
    route({
      method: 'get', path: '/healthz', operationId: 'getHealth', tags: ['ops'], access: 'public',
      summary: 'Liveness: the process answers.',
      responses: { 200: { description: 'Alive', schema: z.object({ status: z.literal('ok') }) } },
      async handle() {
        return { status: 200, body: { status: 'ok' } };
      },
    }),
    route({
      method: 'get', path: '/readyz', operationId: 'getReadiness', tags: ['ops'], access: 'public',
      summary: 'Readiness: Redis, Postgres and Ollama each up or down. With `metrics:read` (operators), timings, errors, hosts and models too; `?deep=1` (operators only, at most once per PARLEY_READYZ_DEEP_INTERVAL_S) also runs a system.ping job end to end and leaves no record of it.',
      query: ReadinessQuery,
      responses: {
        200: { description: 'Ready', schema: Readiness },
        401: problem('`deep=1` without credentials (UNAUTHENTICATED)', { 'WWW-Authenticate': { description: 'Bearer' } }),
        403: problem('`deep=1` without the `metrics:read` permission (FORBIDDEN)'),
        429: problem('A deep probe ran less than PARLEY_READYZ_DEEP_INTERVAL_S ago (RATE_LIMITED)', { 'Retry-After': { description: 'Seconds until the next deep probe may run' } }),
        503: { description: 'Not ready: some dependency is down', schema: Readiness, headers: { 'Retry-After': { description: 'Seconds to wait before asking again' } } },
      },
      async handle({ query, actor }): Promise<RouteResult> {
        const detailed = can(actor, 'metrics:read');
        const deep = query.deep === '1' || query.deep === 'true';
        if (deep && !actor) throw new AppError('UNAUTHENTICATED', { detail: 'Deep readiness is for operators: send their credentials' });
        if (deep && !detailed) throw new AppError('FORBIDDEN', { detail: 'Deep readiness needs the metrics:read permission' });
        const [redis, postgres, ollama] = await Promise.all([
          timed(() => deps.redis.ping()),
          timed(() => deps.db.raw('select 1')),
          timed(() => deps.ollama.version()),
        ]);
        const checks: Record<string, z.infer<typeof Check>> = { redis, postgres, ollama };
        if (deep && deps.deepProbe) {
          const probe = await deps.deepProbe();
          if ('retryAfterS' in probe) throw new AppError('RATE_LIMITED', { detail: `A deep probe ran moments ago; the next may run in ${probe.retryAfterS} s`, headers: { 'Retry-After': String(probe.retryAfterS) } });
          checks.pipeline = probe;
        }
        const ok = Object.values(checks).every((c) => c.ok);
        const status = ok ? 'ready' : 'degraded';
        // Anyone may ask whether the service is up; what is down and why (internal URLs, raw errors) is for operators.
        if (!detailed) return { status: ok ? 200 : 503, body: { status, checks: Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, { ok: c.ok }])) }, headers: ok ? undefined : { 'Retry-After': '5' } };
        const extra = deps.extraReadiness ? await deps.extraReadiness().catch(() => ({})) : {};
        return { status: ok ? 200 : 503, body: { status, checks, ...extra }, headers: ok ? undefined : { 'Retry-After': '5' } };
      },
    }),
    route({
      method: 'get', path: '/metrics', operationId: 'getMetrics', tags: ['ops'], access: 'metrics:read',
      summary: 'Prometheus metrics of this API process (each worker process serves its own on PARLEY_WORKER_PORT). PARLEY_METRICS_TOKEN is accepted as a Bearer token here too.',
      responses: { 200: { description: 'Prometheus text format', contentType: 'text/plain' } },
      async handle() {
        const { text, contentType } = await renderMetrics(deps.scrape);
        return { status: 200, body: text, contentType };
      },
    }),
    route({
      method: 'get', path: '/openapi.json', operationId: 'getOpenApi', tags: ['ops'], access: 'public',
      summary: 'This API as OpenAPI 3.1, generated from the zod contracts.',
      responses: { 200: { description: 'OpenAPI document' } },
      async handle() {
        return { status: 200, body: deps.openapi() };
      },
    }),
  ];
}
