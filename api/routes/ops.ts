/** Liveness, readiness, metrics and the OpenAPI document. */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Db } from '../../platform/connections/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { MetricsDeps } from '../domain/metrics.ts';
import { renderMetrics } from '../domain/metrics.ts';
import { route, type Route, type RouteResult } from '../http/route.ts';

export interface OpsDeps {
  redis: Redis;
  db: Db;
  ollama: OllamaClient;
  /** What /metrics reports (api/domain/metrics.ts). */
  scrape: MetricsDeps;
  /** Submits a system.ping and waits for it; the deep readiness check. */
  deepProbe?: () => Promise<{ ok: boolean; ms: number; detail?: string }>;
  /** Extra readiness detail (e.g. per-model availability). */
  extraReadiness?: () => Promise<Record<string, unknown>>;
  openapi: () => object;
}

const Check = z.object({ ok: z.boolean(), ms: z.number(), detail: z.string().optional() });
const Readiness = z.object({ status: z.enum(['ready', 'degraded']), checks: z.record(z.string(), Check) });

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
      summary: 'Readiness: Redis, Postgres and Ollama each reported; `?deep=1` also runs a system.ping job end to end.',
      query: z.object({ deep: z.enum(['0', '1', 'true', 'false']).optional() }),
      responses: { 200: { description: 'Ready', schema: Readiness }, 503: { description: 'Not ready', schema: Readiness } },
      async handle({ query }): Promise<RouteResult> {
        const [redis, postgres, ollama] = await Promise.all([
          timed(() => deps.redis.ping()),
          timed(() => deps.db.raw('select 1')),
          timed(() => deps.ollama.version()),
        ]);
        const checks: Record<string, z.infer<typeof Check>> = { redis, postgres, ollama };
        if ((query.deep === '1' || query.deep === 'true') && deps.deepProbe) checks.pipeline = await deps.deepProbe();
        const extra = deps.extraReadiness ? await deps.extraReadiness().catch(() => ({})) : {};
        const ok = Object.values(checks).every((c) => c.ok);
        return { status: ok ? 200 : 503, body: { status: ok ? 'ready' : 'degraded', checks, ...extra } };
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
